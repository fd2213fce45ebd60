// swift-tools-version:6.0
// egress-monitor: no package dependencies. The toolchain and the system OpenSSL only.
import PackageDescription

// The product's modules do without the implicitly imported `_StringProcessing` (regex), so the
// binary does not link it and `_RegexParser` (about 1 MB of code, most of it never run).
let productSwiftSettings: [SwiftSetting] = [
    .unsafeFlags(["-Xfrontend", "-disable-implicit-string-processing-module-import"]),
]

let package = Package(
    name: "egress-monitor",
    products: [
        .executable(name: "egress-monitor", targets: ["egress-monitor"]),
    ],
    targets: [
        // The system OpenSSL (libssl-dev), seen only by EgressNet's TLS wrapper.
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // The system zlib (zlib1g-dev), for gzip-compressed scrapes; seen only by EgressMetrics.
        .systemLibrary(
            name: "CZlib",
            path: "Sources/CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // epoll and eventfd headers, which the Glibc module does not import.
        .systemLibrary(name: "CLinux", path: "Sources/CLinux"),
        // The package's lock: Synchronization.Mutex's API on pthread_mutex_t, which
        // ThreadSanitizer understands (Sources/EgressSync/Mutex.swift says why).
        .target(name: "EgressSync", swiftSettings: productSwiftSettings),
        // Sockets, deadlines, the epoll reactor, DNS, TLS, HTTP/1.1, proxy handshakes.
        .target(name: "EgressNet", dependencies: ["COpenSSL", "CLinux", "EgressSync"], swiftSettings: productSwiftSettings),
        // Counters, gauges, histograms; the text, OpenMetrics and protobuf expositions, gzip. Knows no network.
        .target(name: "EgressMetrics", dependencies: ["EgressSync", "CZlib"], swiftSettings: productSwiftSettings),
        // The product: config, probes, registry semantics, scheduler, catalogue, server, reports.
        .target(name: "EgressMonitor", dependencies: ["EgressNet", "EgressMetrics", "EgressSync", "CLinux"], swiftSettings: productSwiftSettings),
        // Thin: arguments, signals, wiring.
        .executableTarget(name: "egress-monitor", dependencies: ["EgressMonitor", "CLinux"], swiftSettings: productSwiftSettings),

        // The interop lab for tests: certificates, nginx, dnsmasq, docker-registry, misbehaving servers.
        .target(name: "EgressTestSupport", dependencies: ["EgressNet", "EgressSync", "COpenSSL"], path: "Tests/EgressTestSupport"),
        .testTarget(name: "EgressNetTests", dependencies: ["EgressNet", "EgressTestSupport"]),
        .testTarget(name: "EgressMetricsTests", dependencies: ["EgressMetrics", "EgressTestSupport"]),
        .testTarget(name: "EgressMonitorTests", dependencies: ["EgressMonitor", "EgressNet", "EgressMetrics", "EgressSync", "EgressTestSupport"]),
    ]
)
