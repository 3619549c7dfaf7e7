// Not `ZLabelVersion`: the symbol-graph tools leave out a type whose name begins with its module's name, so
// it would be missing from the documentation.

/// The version of zlabel: the library products and the `zlabel` command (`zlabel --version`) share it.
///
/// It follows semantic versioning as described in the "API stability" article: a new minor version adds API,
/// a new major version may remove or change it.
public enum LibraryVersion {
    /// The version string, `MAJOR.MINOR.PATCH`.
    public static let current = "0.1.0"
}
