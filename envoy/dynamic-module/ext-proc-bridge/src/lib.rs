//! meshcrypt's ext_proc bridge: an Envoy network-filter dynamic module that does what Envoy's own network ext_proc
//! filter does towards the filter-service (one `NetworkExternalProcessor.Process` stream per connection, every
//! chunk of both directions through it, fail closed), for Envoys built without that filter, such as istio-proxy.
//! docs/dynamic-module.md describes the behaviour; `abi` the Envoy interface; `filter` the worker-thread side;
//! `processor` the gRPC side.

mod abi;
mod config;
mod filter;
mod processor;
mod proto;
mod stats;
mod tls;

use abi::{CloseType, DataStatus, FilterEnvoyPtr};
use config::BridgeConfig;
use filter::{Filter, Shared};
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::runtime::Runtime;

/// The ABI version of Envoy 1.40.0's abi.h (`ENVOY_DYNAMIC_MODULES_ABI_VERSION`). Envoy logs a warning, and still
/// loads the module, when it differs; docs/dynamic-module.md says which Envoy versions this binary was checked on.
const ABI_VERSION: &[u8] = b"v0.2.0\0";

/// The filter name this module answers to (`filter_name` in the dynamic_modules filter config).
const FILTER_NAME: &[u8] = b"ext_proc_bridge";

/// The gRPC threads: few, since each only moves messages; Envoy's workers do the rest.
const RUNTIME_THREADS: usize = 2;

fn runtime() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(RUNTIME_THREADS)
                .thread_name("meshcrypt-bridge")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    ABI_VERSION.as_ptr().cast()
}

/// Parses and checks the config; a null return makes Envoy reject it.
///
/// # Safety
/// Envoy passes valid (pointer, length) pairs for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_network_filter_config_new(
    config_envoy: *mut c_void,
    name: *const u8,
    name_length: usize,
    config: *const u8,
    config_length: usize,
) -> *const c_void {
    let name = bytes(name, name_length);
    let config = bytes(config, config_length);
    let result = catch_unwind(|| new_shared(config_envoy, name, config)).unwrap_or_else(|_| Err("panic".into()));
    match result {
        Ok(shared) => Box::into_raw(Box::new(shared)) as *const c_void,
        Err(reason) => {
            eprintln!("meshcrypt-ext-proc-bridge: config refused: {reason}");
            std::ptr::null()
        }
    }
}

unsafe fn bytes<'a>(ptr: *const u8, length: usize) -> &'a [u8] {
    if ptr.is_null() || length == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, length)
    }
}

fn new_shared(config_envoy: *mut c_void, name: &[u8], json: &[u8]) -> Result<Arc<Shared>, String> {
    if name != FILTER_NAME {
        return Err(format!("filter_name: expected {:?}, got {:?}", String::from_utf8_lossy(FILTER_NAME), String::from_utf8_lossy(name)));
    }
    let config = BridgeConfig::parse(json)?;
    let runtime = runtime()?;
    let _context = runtime.enter();
    let endpoint = tonic::transport::Endpoint::from_shared(config.filter_service.clone())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(16 << 20));
    let channel = match &config.tls {
        None => endpoint.connect_lazy(),
        Some(files) => {
            let port = endpoint.uri().port_u16().ok_or("filter_service: no port")?;
            let endpoint = match &files.server_name {
                // the name the certificate is asked for is also the :authority, as with an Envoy cluster's SNI
                rustls_pki_types::ServerName::DnsName(name) => endpoint.origin(
                    format!("https://{}:{port}", name.as_ref()).parse().map_err(|e| format!("tls.server_name: {e}"))?,
                ),
                _ => endpoint,
            };
            endpoint.connect_with_connector_lazy(tls::Connector(Arc::new(tls::ReloadingTls::new(files.clone())?)))
        }
    };
    Ok(Arc::new(Shared { config, channel, runtime, stats: stats::Stats::define(config_envoy) }))
}

/// # Safety
/// `config` is what config_new returned, destroyed once.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_network_filter_config_destroy(config: *const c_void) {
    if !config.is_null() {
        drop(Box::from_raw(config as *mut Arc<Shared>));
    }
}

/// # Safety
/// `config` is a live config from config_new; `envoy` is the new connection's filter.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_network_filter_new(config: *const c_void, envoy: FilterEnvoyPtr) -> *const c_void {
    let shared = (*(config as *const Arc<Shared>)).clone();
    Box::into_raw(Box::new(Filter::new(envoy, shared))) as *const c_void
}

unsafe fn filter<'a>(ptr: *const c_void) -> &'a Filter {
    &*(ptr as *const Filter)
}

/// Runs a data hook; a panic closes the connection (fail closed) instead of unwinding into Envoy.
unsafe fn guarded(envoy: FilterEnvoyPtr, hook: impl FnOnce() -> DataStatus) -> DataStatus {
    catch_unwind(AssertUnwindSafe(hook)).unwrap_or_else(|_| {
        abi::envoy_dynamic_module_callback_network_filter_close(envoy, CloseType::NoFlush);
        DataStatus::StopIteration
    })
}

/// # Safety
/// Called by Envoy on the connection's worker thread with the pointers it was given.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_network_filter_new_connection(
    envoy: FilterEnvoyPtr,
    module: *const c_void,
) -> DataStatus {
    guarded(envoy, || filter(module).on_new_connection())
}

/// # Safety
/// Called by Envoy on the connection's worker thread with the pointers it was given.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_network_filter_read(
    envoy: FilterEnvoyPtr,
    module: *const c_void,
    length: usize,
    end_of_stream: bool,
) -> DataStatus {
    guarded(envoy, || filter(module).on_read(length, end_of_stream))
}

/// # Safety
/// Called by Envoy on the connection's worker thread with the pointers it was given.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_network_filter_write(
    envoy: FilterEnvoyPtr,
    module: *const c_void,
    length: usize,
    end_of_stream: bool,
) -> DataStatus {
    guarded(envoy, || filter(module).on_write(length, end_of_stream))
}

/// # Safety
/// Called by Envoy on the connection's worker thread with the pointers it was given.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_network_filter_event(envoy: FilterEnvoyPtr, module: *const c_void, event: u32) {
    let _ = envoy;
    let _ = catch_unwind(AssertUnwindSafe(|| filter(module).on_event(event)));
}

/// # Safety
/// Called by Envoy on the connection's worker thread with the pointers it was given.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_network_filter_scheduled(
    envoy: FilterEnvoyPtr,
    module: *const c_void,
    _event_id: u64,
) {
    if catch_unwind(AssertUnwindSafe(|| filter(module).on_scheduled())).is_err() {
        abi::envoy_dynamic_module_callback_network_filter_close(envoy, CloseType::NoFlush);
    }
}

/// # Safety
/// Called once by Envoy when the connection's filter goes; `module` is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_network_filter_destroy(module: *const c_void) {
    let filter = Box::from_raw(module as *mut Filter);
    let _ = catch_unwind(AssertUnwindSafe(|| filter.on_destroy()));
}
