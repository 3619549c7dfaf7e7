/// The version of zlabel: the library products and the `zlabel` command (`zlabel --version`) share it.
///
/// It follows semantic versioning as described in the "API stability" article: a new minor version adds API,
/// a new major version may remove or change it.
public enum ZLabelVersion {
    /// The version string, `MAJOR.MINOR.PATCH`.
    public static let current = "0.1.0"
}
