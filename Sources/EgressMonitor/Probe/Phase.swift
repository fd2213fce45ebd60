/// The phases of a probe, in the order they run. A failed probe is counted once, under its
/// first failing phase (DESIGN.md, "Phases and reasons" — a contract with dashboards and alerts).
public enum Phase: String, CaseIterable, Sendable, Codable, Comparable {
    case dns, connect, proxy, tls, http, auth, manifest, blob

    public static func < (a: Phase, b: Phase) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Why a probe failed. The raw values are metric label values and stay stable; new reasons may
/// be added, none renamed.
public enum FailureReason: String, CaseIterable, Sendable, Codable {
    // dns
    case dnsNXDomain = "dns_nxdomain"
    case dnsServFail = "dns_servfail"
    case dnsRefused = "dns_refused"
    case dnsTimeout = "dns_timeout"
    case dnsNoAddress = "dns_no_address"
    case dnsSuspiciousAnswer = "dns_suspicious_answer"
    case dnsError = "dns_error"
    // connect
    case tcpTimeout = "tcp_timeout"
    case tcpRefused = "tcp_refused"
    case tcpReset = "tcp_reset"
    case netUnreachable = "net_unreachable"
    case hostUnreachable = "host_unreachable"
    /// The socket could not be set up for the path (interface missing, CAP_NET_RAW lacking,
    /// source address not local). Added to the contract's list: a path misconfiguration is not
    /// a network failure.
    case pathSetupFailed = "path_setup_failed"
    /// This host could not do its part: out of file descriptors (EMFILE, ENFILE), memory or
    /// socket buffers (ENOMEM, ENOBUFS), local ports (EADDRNOTAVAIL at connect), or another
    /// local system call failed. Added to the contract's list: the agent's own trouble is not
    /// the network's (before, it was counted as `net_unreachable`).
    case localResourceExhausted = "local_resource_exhausted"
    // proxy
    case proxyConnectFailed = "proxy_connect_failed"
    case proxyAuthRequired = "proxy_auth_required"
    case proxyRefused = "proxy_refused"
    case socksError = "socks_error"
    // tls
    case tlsTimeout = "tls_timeout"
    case tlsReset = "tls_reset"
    case tlsCertUntrusted = "tls_cert_untrusted"
    case tlsCertExpired = "tls_cert_expired"
    case tlsHostnameMismatch = "tls_hostname_mismatch"
    case tlsProtocolError = "tls_protocol_error"
    // http, auth, manifest, blob
    case httpTimeout = "http_timeout"
    case httpReset = "http_reset"
    case httpBadResponse = "http_bad_response"
    case httpNotRegistry = "http_not_registry"
    case httpUnauthorized = "http_unauthorized"
    case httpForbidden = "http_forbidden"
    case httpNotFound = "http_not_found"
    case httpRateLimited = "http_rate_limited"
    case httpServerError = "http_server_error"
    case httpUnexpectedStatus = "http_unexpected_status"
    case blobTooSlow = "blob_too_slow"
}
