import EgressNet
public enum EgressMonitorPlaceholder {}
