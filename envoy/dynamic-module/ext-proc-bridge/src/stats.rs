//! The bridge's Envoy stats, in Envoy's `/stats` (under its dynamic-module metrics namespace): streams opened,
//! fail-closed closes by reason, bytes with the filter-service. Defined through the ABI's network-filter metric
//! callbacks, looked up with `dlsym` rather than linked, so that an Envoy without them (they are in 1.40's binary,
//! `nm -D`) still loads the module, without stats; the closes are logged either way.

use crate::abi::FilterEnvoyPtr;
use std::ffi::{c_void, CStr};
use std::sync::OnceLock;

/// Why the bridge closed a connection without passing anything on: one counter each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The stream did not open: filter-service down, refusing, or its certificate refused.
    Unreachable,
    /// The stream failed, was reset or ended mid-connection.
    StreamError,
    /// A chunk was not answered within `message_timeout_ms`.
    Timeout,
    /// More than `max_in_flight_bytes` of one direction with the filter-service.
    InFlightCap,
    /// The filter-service answered `CLOSE_RST`.
    Reset,
}

impl CloseReason {
    const ALL: [CloseReason; 5] =
        [CloseReason::Unreachable, CloseReason::StreamError, CloseReason::Timeout, CloseReason::InFlightCap, CloseReason::Reset];

    pub fn stat_name(self) -> &'static str {
        match self {
            CloseReason::Unreachable => "meshcrypt_bridge.closed_unreachable",
            CloseReason::StreamError => "meshcrypt_bridge.closed_stream_error",
            CloseReason::Timeout => "meshcrypt_bridge.closed_timeout",
            CloseReason::InFlightCap => "meshcrypt_bridge.closed_in_flight_cap",
            CloseReason::Reset => "meshcrypt_bridge.closed_reset",
        }
    }
}

pub const STREAMS_OPENED: &str = "meshcrypt_bridge.streams_opened";
pub const BYTES_IN_FLIGHT: &str = "meshcrypt_bridge.bytes_in_flight";

/// `(config_envoy_ptr, name {ptr, length}, *id) -> metrics_result`; the buffer by value is the (ptr, length) pair
/// on x86-64 and AArch64 (see abi.rs).
type Define = unsafe extern "C" fn(*mut c_void, *const u8, usize, *mut usize) -> u32;
/// `(filter_envoy_ptr, id, value) -> metrics_result`
type Add = unsafe extern "C" fn(FilterEnvoyPtr, usize, u64) -> u32;

const SUCCESS: u32 = 0;

struct Callbacks {
    define_counter: Define,
    define_gauge: Define,
    increment_counter: Add,
    increment_gauge: Add,
    decrement_gauge: Add,
}

fn callbacks() -> Option<&'static Callbacks> {
    static CALLBACKS: OnceLock<Option<Callbacks>> = OnceLock::new();
    CALLBACKS
        .get_or_init(|| {
            // SAFETY: each name is the abi.h function whose signature the field's type spells
            unsafe {
                Some(Callbacks {
                    define_counter: symbol(c"envoy_dynamic_module_callback_network_filter_config_define_counter")?,
                    define_gauge: symbol(c"envoy_dynamic_module_callback_network_filter_config_define_gauge")?,
                    increment_counter: symbol(c"envoy_dynamic_module_callback_network_filter_increment_counter")?,
                    increment_gauge: symbol(c"envoy_dynamic_module_callback_network_filter_increment_gauge")?,
                    decrement_gauge: symbol(c"envoy_dynamic_module_callback_network_filter_decrement_gauge")?,
                })
            }
        })
        .as_ref()
}

/// The function `name` in the process's global scope, where Envoy exports its callbacks.
///
/// # Safety
/// `F` must be the `extern "C" fn` type of `name`.
unsafe fn symbol<F: Copy>(name: &CStr) -> Option<F> {
    let p = libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
    (!p.is_null()).then(|| std::mem::transmute_copy::<*mut c_void, F>(&p))
}

/// The ids Envoy gave one filter config's stats (the same names in every config are the same Envoy stats); none
/// where Envoy lacks the callbacks or refused a definition.
pub struct Stats {
    ids: Option<Ids>,
}

struct Ids {
    streams_opened: usize,
    closed: [usize; CloseReason::ALL.len()],
    bytes_in_flight: usize,
}

impl Stats {
    /// In the config hook, where Envoy lets stats be defined.
    pub fn define(config_envoy: *mut c_void) -> Stats {
        let ids = callbacks().filter(|_| !config_envoy.is_null()).and_then(|cb| {
            let define = |f: Define, name: &str| {
                let mut id = 0usize;
                // SAFETY: config_envoy is the live config of the hook we are in; Envoy copies the name
                (unsafe { f(config_envoy, name.as_ptr(), name.len(), &mut id) } == SUCCESS).then_some(id)
            };
            let mut closed = [0usize; CloseReason::ALL.len()];
            for (i, reason) in CloseReason::ALL.iter().enumerate() {
                closed[i] = define(cb.define_counter, reason.stat_name())?;
            }
            Some(Ids {
                streams_opened: define(cb.define_counter, STREAMS_OPENED)?,
                closed,
                bytes_in_flight: define(cb.define_gauge, BYTES_IN_FLIGHT)?,
            })
        });
        Stats { ids }
    }

    /// The following take the connection's live filter: Envoy finds the stat through its config.
    pub fn stream_opened(&self, envoy: FilterEnvoyPtr) {
        if let (Some(cb), Some(ids)) = (callbacks(), &self.ids) {
            unsafe { (cb.increment_counter)(envoy, ids.streams_opened, 1) };
        }
    }

    pub fn closed(&self, envoy: FilterEnvoyPtr, reason: CloseReason) {
        if let (Some(cb), Some(ids)) = (callbacks(), &self.ids) {
            let i = CloseReason::ALL.iter().position(|r| *r == reason).expect("every reason is in ALL");
            unsafe { (cb.increment_counter)(envoy, ids.closed[i], 1) };
        }
    }

    /// Bytes sent to the filter-service (positive) or answered or dropped with the connection (negative).
    pub fn in_flight(&self, envoy: FilterEnvoyPtr, delta: i64) {
        if let (Some(cb), Some(ids)) = (callbacks(), &self.ids) {
            let f = if delta >= 0 { cb.increment_gauge } else { cb.decrement_gauge };
            if delta != 0 {
                unsafe { f(envoy, ids.bytes_in_flight, delta.unsigned_abs()) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_process_without_envoys_callbacks_when_stats_are_defined_and_used_then_they_do_nothing() {
        let stats = Stats::define(std::ptr::null_mut());
        assert!(stats.ids.is_none());
        stats.stream_opened(std::ptr::null_mut());
        stats.closed(std::ptr::null_mut(), CloseReason::Timeout);
        stats.in_flight(std::ptr::null_mut(), -5);
    }

    #[test]
    fn given_every_close_reason_then_each_has_its_own_stat() {
        let names: std::collections::HashSet<_> = CloseReason::ALL.iter().map(|r| r.stat_name()).collect();
        assert_eq!(names.len(), CloseReason::ALL.len());
    }
}
