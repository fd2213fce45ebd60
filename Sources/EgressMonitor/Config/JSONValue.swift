import Foundation

/// A JSON document as a tree of values, decoded with Foundation's JSONDecoder, so the config
/// validator can walk it field by field, name every bad field by its path, and reject unknown
/// fields (which Codable would silently ignore).
public indirect enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let n = try? c.decode(Double.self) { self = .number(n); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    /// Parses `data` as JSON; the error names where the syntax broke.
    public static func parse(_ data: Data) throws(ConfigError) -> JSONValue {
        do {
            return try JSONDecoder().decode(JSONValue.self, from: data)
        } catch let DecodingError.dataCorrupted(context) {
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            throw ConfigError([ConfigIssue(path: "", message: "not valid JSON: \(underlying ?? context.debugDescription)")])
        } catch {
            throw ConfigError([ConfigIssue(path: "", message: "not valid JSON: \(error)")])
        }
    }

    /// What a person would call this kind of value, for error messages.
    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// One problem in a config file: the JSON path of the field and what was expected.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    /// `targets[2].url`, or empty for the document itself.
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Every problem found in a config, reported at once.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let issues: [ConfigIssue]
    public init(_ issues: [ConfigIssue]) { self.issues = issues }
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
