// Which profile, region and endpoint a command uses, resolved in botocore's order.
//
// Profile:  --profile, else AWS_DEFAULT_PROFILE, else AWS_PROFILE, else "default".
// Region:   --region, AWS_REGION, AWS_DEFAULT_REGION, the profile's `region`, then (async, see
//           AWSSession) the instance metadata service.
// Endpoint: --endpoint-url, AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, the profile's
//           `[services NAME]` entry, the profile's `endpoint_url`, then https://SERVICE.REGION.amazonaws.com.
//           AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true (or the profile's ignore_configured_endpoint_urls) skips
//           the env and file sources; --endpoint-url always applies.
// Files:    AWS_CONFIG_FILE (default ~/.aws/config), AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials).

import Foundation

/// What the process sees: environment variables, the home directory, and a way to read files. Tests pass
/// their own.
public struct AWSEnvironment: Sendable {
    /// Environment variables.
    public var variables: [String: String]
    /// The home directory, for `~/.aws/…`.
    public var homeDirectory: String
    /// Reads a whole text file, or returns nil when it does not exist.
    public var readFile: @Sendable (String) -> String?

    /// Creates an environment.
    public init(
        variables: [String: String], homeDirectory: String,
        readFile: @escaping @Sendable (String) -> String? = AWSEnvironment.readFileFromDisk
    ) {
        self.variables = variables
        self.homeDirectory = homeDirectory
        self.readFile = readFile
    }

    /// The real process environment.
    public static var process: AWSEnvironment {
        let env = ProcessInfo.processInfo.environment
        return AWSEnvironment(variables: env, homeDirectory: env["HOME"] ?? NSHomeDirectory())
    }

    /// Reads a file with Foundation; nil when missing or unreadable.
    @Sendable public static func readFileFromDisk(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// A variable, nil when unset or empty.
    public subscript(_ name: String) -> String? {
        guard let v = variables[name], !v.isEmpty else { return nil }
        return v
    }

    /// `true`/`false` variables (case-insensitive).
    public func flag(_ name: String) -> Bool { self[name]?.lowercased() == "true" }

    func expand(_ path: String) -> String {
        if path == "~" { return homeDirectory }
        if path.hasPrefix("~/") { return homeDirectory + path.dropFirst(1) }
        return path
    }

    /// Path of the config file.
    public var configFilePath: String { expand(self["AWS_CONFIG_FILE"] ?? "~/.aws/config") }
    /// Path of the credentials file.
    public var credentialsFilePath: String { expand(self["AWS_SHARED_CREDENTIALS_FILE"] ?? "~/.aws/credentials") }
}

/// Settings given on the command line; they win over everything else.
public struct AWSClientOptions: Sendable, Equatable {
    /// `--profile`.
    public var profile: String?
    /// `--region`.
    public var region: String?
    /// `--endpoint-url`, used for every service.
    public var endpointURL: String?

    /// Creates options.
    public init(profile: String? = nil, region: String? = nil, endpointURL: String? = nil) {
        self.profile = profile
        self.region = region
        self.endpointURL = endpointURL
    }
}

/// An AWS service this package talks to.
public struct AWSService: Sendable, Hashable, CustomStringConvertible {
    /// The SigV4 signing name and endpoint prefix, e.g. `ebs`.
    public var signingName: String
    /// The serviceId as used in `AWS_ENDPOINT_URL_<ID>` (upper case, spaces as `_`), e.g. `EBS`.
    public var envID: String
    /// The key in a `[services NAME]` section, e.g. `ebs`.
    public var configKey: String

    /// EBS direct APIs.
    public static let ebs = AWSService(signingName: "ebs", envID: "EBS", configKey: "ebs")
    /// EC2.
    public static let ec2 = AWSService(signingName: "ec2", envID: "EC2", configKey: "ec2")

    public var description: String { signingName }
}

/// The AWS SDKs' retry modes (`AWS_RETRY_MODE`, the profile's `retry_mode`).
public enum RetryMode: String, Sendable, Equatable, CaseIterable {
    /// zlabel's own limits (10 attempts for every retried failure, `--max-attempts`).
    case legacy
    /// The standard rules across the AWS SDKs; what zlabel does when nothing is set.
    case standard
    /// Standard plus client-side rate limiting in the SDKs; zlabel treats it as standard.
    case adaptive
}

/// The retry settings of the configuration, and where they came from.
public struct RetrySettings: Sendable, Equatable {
    /// The mode.
    public var mode: RetryMode
    /// `AWS_MAX_ATTEMPTS` or the profile's `max_attempts`; `nil` when neither is set.
    public var maxAttempts: Int?
    /// Where the mode and the attempts came from, for `--verbose`.
    public var source: String

    /// Creates settings.
    public init(mode: RetryMode, maxAttempts: Int?, source: String) {
        self.mode = mode
        self.maxAttempts = maxAttempts
        self.source = source
    }
}

/// The files and names a command's AWS settings come from, before credentials are looked up.
public struct AWSConfiguration: Sendable {
    /// The environment.
    public var environment: AWSEnvironment
    /// Command-line settings.
    public var options: AWSClientOptions
    /// The profile name in use.
    public var profileName: String
    /// True when the profile was chosen with `--profile` (botocore then skips the env credentials).
    public var profileIsExplicit: Bool
    /// The parsed config file (empty when missing).
    public var configFile: SharedConfigFile
    /// The parsed credentials file (empty when missing).
    public var credentialsFile: SharedConfigFile

    /// Loads the files and picks the profile.
    ///
    /// - Throws: ``AWSConfigurationError`` when a file cannot be parsed, or when a profile named with
    ///   `--profile`/`AWS_PROFILE` exists in neither file.
    public init(environment: AWSEnvironment, options: AWSClientOptions) throws(AWSConfigurationError) {
        self.environment = environment
        self.options = options
        let cfgPath = environment.configFilePath
        let credPath = environment.credentialsFilePath
        configFile = try environment.readFile(cfgPath).map { t throws(AWSConfigurationError) in
            try SharedConfigFile(parsing: t, path: cfgPath)
        } ?? SharedConfigFile()
        credentialsFile = try environment.readFile(credPath).map { t throws(AWSConfigurationError) in
            try SharedConfigFile(parsing: t, path: credPath)
        } ?? SharedConfigFile()
        if let p = options.profile {
            profileName = p
            profileIsExplicit = true
        } else {
            profileName = environment["AWS_DEFAULT_PROFILE"] ?? environment["AWS_PROFILE"] ?? "default"
            profileIsExplicit = false
        }
        if profileName != "default" && profile == nil && credentialsFile.sections[profileName] == nil {
            throw AWSConfigurationError(
                "the config profile (\(profileName)) could not be found in \(cfgPath) or \(credPath)")
        }
    }

    /// The profile's section of the config file.
    public var profile: [String: SharedConfigValue]? { configFile.configProfile(profileName) }

    /// A plain value of the profile in the config file.
    public func profileValue(_ key: String) -> String? { profile?[key]?.string }

    /// The region from flags, environment or profile; nil when none is set (the caller may ask IMDS).
    public var configuredRegion: String? {
        options.region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? profileValue("region")
    }

    /// The CA certificates to trust for HTTPS instead of the system's: `AWS_CA_BUNDLE`, then the profile's
    /// `ca_bundle` (as the AWS CLI reads them); nil for the system's store.
    public var caBundle: String? {
        if let path = environment["AWS_CA_BUNDLE"], !path.isEmpty { return environment.expand(path) }
        if let path = profileValue("ca_bundle"), !path.isEmpty { return environment.expand(path) }
        return nil
    }

    /// The endpoint for a service.
    ///
    /// - Parameters:
    ///   - service: the service.
    ///   - region: the region, for the default endpoint.
    /// - Returns: the endpoint and where it came from (for log lines and connect errors; the caller's own setting
    ///   is "the endpoint URL option", never a command line's flag).
    /// - Throws: ``AWSConfigurationError`` for an unparsable URL.
    public func endpoint(for service: AWSService, region: String) throws(AWSConfigurationError) -> (
        endpoint: Endpoint, source: String
    ) {
        if let u = options.endpointURL { return (try Endpoint(parsing: u), "the endpoint URL option") }
        let ignore =
            environment.flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            || profileValue("ignore_configured_endpoint_urls")?.lowercased() == "true"
        if !ignore {
            let specific = "AWS_ENDPOINT_URL_\(service.envID)"
            if let u = environment[specific] { return (try Endpoint(parsing: u), specific) }
            if let u = environment["AWS_ENDPOINT_URL"] { return (try Endpoint(parsing: u), "AWS_ENDPOINT_URL") }
            if let servicesName = profileValue("services") {
                if case .nested(let table)? = configFile.servicesSection(servicesName)?[service.configKey],
                    let u = table["endpoint_url"]
                {
                    return (try Endpoint(parsing: u), "[services \(servicesName)] \(service.configKey).endpoint_url")
                }
            }
            if let u = profileValue("endpoint_url") {
                return (try Endpoint(parsing: u), "profile \(profileName) endpoint_url")
            }
        }
        guard Self.isValidRegion(region) else {
            throw AWSConfigurationError("region \"\(region)\" is not a valid region name")
        }
        let suffix = region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com"
        return (Endpoint(scheme: "https", host: "\(service.signingName).\(region).\(suffix)"), "default")
    }

    /// The retry mode and attempt limit: `AWS_RETRY_MODE`, else the profile's `retry_mode`, else standard;
    /// `AWS_MAX_ATTEMPTS`, else the profile's `max_attempts`, else unset (the mode's default).
    ///
    /// - Throws: ``AWSConfigurationError`` for an unknown mode or an attempt count that is not a number above 0,
    ///   naming where the value came from.
    public func retrySettings() throws(AWSConfigurationError) -> RetrySettings {
        var sources: [String] = []
        var mode = RetryMode.standard
        let modeSource = environment["AWS_RETRY_MODE"].map { ($0, "AWS_RETRY_MODE") }
            ?? profileValue("retry_mode").map { ($0, "profile \(profileName) retry_mode") }
        if case let (text, source)? = modeSource {
            guard let m = RetryMode(rawValue: text.lowercased()) else {
                throw AWSConfigurationError(
                    "\(source) is \"\(text)\"; it takes \(RetryMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            mode = m
            sources.append(source)
        }
        var attempts: Int?
        let attemptsSource = environment["AWS_MAX_ATTEMPTS"].map { ($0, "AWS_MAX_ATTEMPTS") }
            ?? profileValue("max_attempts").map { ($0, "profile \(profileName) max_attempts") }
        if case let (text, source)? = attemptsSource {
            guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n > 0 else {
                throw AWSConfigurationError("\(source) is \"\(text)\"; it takes a whole number of attempts above 0")
            }
            attempts = n
            sources.append(source)
        }
        return RetrySettings(mode: mode, maxAttempts: attempts, source: sources.isEmpty ? "default" : sources.joined(separator: ", "))
    }

    /// Letters, digits and `-` only (a region becomes part of a host name).
    public static func isValidRegion(_ r: String) -> Bool {
        !r.isEmpty && r.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2D || (c >= 0x41 && c <= 0x5A)
        }
    }
}
