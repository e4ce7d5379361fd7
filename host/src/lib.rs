//! dynamic-toolset service and CLI.
