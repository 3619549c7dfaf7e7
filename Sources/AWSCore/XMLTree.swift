// A small element tree for EC2 Query API responses, built with Foundation's event parser
// (FoundationXML on Linux). EC2 responses are namespaced (`xmlns="http://ec2.amazonaws.com/doc/…"`); element
// names are kept without prefix and namespaces are ignored. Text is the concatenation of an element's own
// character data. Lists are `<xxxSet><item>…</item></xxxSet>`; see ``XMLTree/items(_:)``.

import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif

/// An XML element: name, attributes, children and text.
public struct XMLTree: Sendable, Equatable {
    /// The local name.
    public var name: String
    /// Attributes.
    public var attributes: [String: String]
    /// Child elements in document order.
    public var children: [XMLTree]
    /// Character data directly inside this element.
    public var text: String

    /// Creates an element.
    public init(name: String, attributes: [String: String] = [:], children: [XMLTree] = [], text: String = "") {
        self.name = name
        self.attributes = attributes
        self.children = children
        self.text = text
    }

    /// The first child named `name`.
    public func child(_ name: String) -> XMLTree? { children.first(where: { $0.name == name }) }

    /// Every child named `name`.
    public func children(_ name: String) -> [XMLTree] { children.filter { $0.name == name } }

    /// The text of the child at a path of names, e.g. `["volumeSize"]`.
    public func string(_ path: String...) -> String? {
        var node: XMLTree? = self
        for p in path { node = node?.child(p) }
        return node?.text
    }

    /// The `<item>` children of the child named `setName` (EC2's list encoding); empty when absent.
    public func items(_ setName: String) -> [XMLTree] { child(setName)?.children("item") ?? [] }

    /// Depth-first search for the first element named `name` (self included).
    public func firstDescendant(_ name: String) -> XMLTree? {
        if self.name == name { return self }
        for c in children {
            if let f = c.firstDescendant(name) { return f }
        }
        return nil
    }

    /// Parses a document and returns its root element.
    ///
    /// - Throws: ``XMLTreeError`` with the parser's line and column when the document is not well formed.
    public static func parse(_ bytes: [UInt8]) throws(XMLTreeError) -> XMLTree {
        let parser = XMLParser(data: Data(bytes))
        let builder = Builder()
        parser.delegate = builder
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        let ok = parser.parse()
        guard ok, let root = builder.root else {
            throw XMLTreeError(
                line: parser.lineNumber, column: parser.columnNumber,
                message: parser.parserError.map { "\($0)" } ?? "no root element")
        }
        return root
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [XMLTree] = []
        var root: XMLTree?

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
            qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]
        ) {
            let local = elementName.split(separator: ":").last.map(String.init) ?? elementName
            stack.append(XMLTree(name: local, attributes: attributeDict))
        }

        func parser(
            _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?,
            qualifiedName qName: String?
        ) {
            guard var done = stack.popLast() else { return }
            if !done.children.isEmpty { done.text = done.text.trimmingCharacters(in: .whitespacesAndNewlines) }
            if stack.isEmpty {
                root = done
            } else {
                stack[stack.count - 1].children.append(done)
            }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if !stack.isEmpty { stack[stack.count - 1].text += string }
        }

        func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
            if !stack.isEmpty { stack[stack.count - 1].text += String(decoding: CDATABlock, as: UTF8.self) }
        }
    }
}

/// A document that is not well-formed XML.
public struct XMLTreeError: Error, Sendable, CustomStringConvertible {
    /// 1-based line of the problem.
    public var line: Int
    /// 1-based column.
    public var column: Int
    /// The parser's message.
    public var message: String
    public var description: String { "XML error at line \(line), column \(column): \(message)" }
}
