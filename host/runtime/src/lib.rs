//! Sandboxed detector runtime (to be written).
