// The bridge from AWSCore's request type to the HTTP/1.1 wire format (module HTTPWire).

import HTTPWire
import NIOCore

enum HTTP1Request {
    /// The head of `request`: Host from its endpoint unless it has one, Content-Length from its body (sent for
    /// every PUT and POST).
    static func head(_ request: AWSRequest) throws(HTTP1RequestHead.Invalid) -> [UInt8] {
        try HTTP1RequestHead.make(
            method: request.method, target: request.target, headers: request.headers,
            host: request.endpoint.hostHeader, bodyLength: request.bodyBuffer.readableBytes,
            alwaysLength: request.method == "PUT" || request.method == "POST")
    }
}

extension HTTPResponse {
    init(_ r: HTTP1Response) {
        self.init(status: r.status, headers: r.headers, body: r.body)
    }
}
