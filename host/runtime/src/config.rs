//! Runtime limits.

use std::path::PathBuf;
use std::time::Duration;

/// Sandbox limits and options shared by every detector of a [`crate::DetectorSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Wall-clock budget of one `detect`/`metadata` call; beyond it the call traps and is
    /// reported as a timeout. Enforced with epoch interruption, to a resolution of
    /// [`RuntimeConfig::epoch_tick`].
    pub call_deadline: Duration,
    /// Linear memory one detector instance may use, in bytes.
    pub memory_limit_bytes: usize,
    /// Fragments one `detect` call may return.
    pub max_fragments: usize,
    /// Bytes of text (all strings of the answer together) one `detect` call may return.
    pub max_output_bytes: usize,
    /// Where compiled components are cached (`Component::serialize`), keyed by the
    /// component's sha256 and the engine's configuration. `None`: compile every time.
    pub cache_dir: Option<PathBuf>,
    /// Deserialize the bundled detectors from the code precompiled into the binary at build
    /// time (when it fits this engine and CPU; otherwise they are compiled). `false`: compile
    /// them at load (or take them from `cache_dir`), as third-party files.
    pub precompiled: bool,
    /// Interval of the epoch ticker thread.
    pub epoch_tick: Duration,
    /// Log lines one call may emit; more are dropped (and counted in one final line).
    pub max_log_lines_per_call: u32,
    /// Bytes kept of one log line.
    pub max_log_line_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            call_deadline: Duration::from_millis(100),
            memory_limit_bytes: 16 << 20,
            max_fragments: 32,
            max_output_bytes: 256 << 10,
            cache_dir: None,
            precompiled: true,
            epoch_tick: Duration::from_millis(5),
            max_log_lines_per_call: 32,
            max_log_line_bytes: 1024,
        }
    }
}

impl RuntimeConfig {
    /// Epoch ticks a call may last: enough that the call gets at least `call_deadline`.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = self.epoch_tick.as_nanos().max(1);
        let ticks = self.call_deadline.as_nanos().div_ceil(tick);
        u64::try_from(ticks)
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_ticks_round_up() {
        let cfg = RuntimeConfig::default();
        assert_eq!(cfg.deadline_ticks(), 21);
        let cfg = RuntimeConfig {
            call_deadline: Duration::from_millis(7),
            epoch_tick: Duration::from_millis(5),
            ..RuntimeConfig::default()
        };
        assert_eq!(cfg.deadline_ticks(), 3);
    }
}
