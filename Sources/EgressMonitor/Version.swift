/// The agent's version, shown by `--version`, in `egress_build_info` and the User-Agent.
public enum EgressMonitorVersion {
    public static let current = "0.1.0"
}
