public enum EgressMetricsPlaceholder {}
