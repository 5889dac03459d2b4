//! The part of Envoy's dynamic-module ABI (source/extensions/dynamic_modules/abi/abi.h, "v0.2.0" in Envoy 1.40.0)
//! that the bridge uses, declared by hand: the network-filter event hooks are exported from `lib.rs`, the callbacks
//! below are implemented by Envoy and resolved when Envoy dlopen()s the module.
//!
//! Buffers: where abi.h passes `envoy_dynamic_module_type_module_buffer {ptr, length}` by value, the SysV x86-64 and
//! AArch64 calling conventions pass it in the same two registers as a separate `(ptr, length)` pair, which is how
//! Envoy 1.37-1.39 declared the same functions; declaring the pair keeps one binary valid for both spellings.
#![allow(non_camel_case_types)]

use std::ffi::c_void;

/// `envoy_dynamic_module_type_network_filter_envoy_ptr`: Envoy's filter object, valid until the destroy hook.
pub type FilterEnvoyPtr = *mut c_void;
/// `envoy_dynamic_module_type_network_filter_scheduler_module_ptr`: owned by the module, freed with scheduler_delete.
pub type SchedulerPtr = *mut c_void;

/// `envoy_dynamic_module_type_envoy_buffer`: a slice of memory Envoy owns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

/// `envoy_dynamic_module_type_on_network_filter_data_status`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataStatus {
    Continue = 0,
    StopIteration = 1,
}

/// `envoy_dynamic_module_type_network_connection_close_type`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)]
pub enum CloseType {
    FlushWrite = 0,
    NoFlush = 1,
    FlushWriteAndDelay = 2,
    Abort = 3,
    AbortReset = 4,
}

/// `envoy_dynamic_module_type_network_connection_event`: taken as a plain integer, so that a value added by a
/// later Envoy is not undefined behaviour.
pub const EVENT_REMOTE_CLOSE: u32 = 0;
pub const EVENT_LOCAL_CLOSE: u32 = 1;

extern "C" {
    pub fn envoy_dynamic_module_callback_network_filter_get_read_buffer_chunks_size(filter: FilterEnvoyPtr) -> usize;
    pub fn envoy_dynamic_module_callback_network_filter_get_read_buffer_chunks(
        filter: FilterEnvoyPtr,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_network_filter_drain_read_buffer(filter: FilterEnvoyPtr, length: usize) -> bool;
    pub fn envoy_dynamic_module_callback_network_filter_get_write_buffer_chunks_size(filter: FilterEnvoyPtr) -> usize;
    pub fn envoy_dynamic_module_callback_network_filter_get_write_buffer_chunks(
        filter: FilterEnvoyPtr,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_network_filter_drain_write_buffer(filter: FilterEnvoyPtr, length: usize) -> bool;

    /// Passes bytes to the filters after this one (tcp_proxy): client -> broker.
    pub fn envoy_dynamic_module_callback_network_filter_inject_read_data(
        filter: FilterEnvoyPtr,
        data: *const u8,
        length: usize,
        end_stream: bool,
    );
    /// Passes bytes on down the write chain, towards the client: broker -> client.
    pub fn envoy_dynamic_module_callback_network_filter_inject_write_data(
        filter: FilterEnvoyPtr,
        data: *const u8,
        length: usize,
        end_stream: bool,
    );
    pub fn envoy_dynamic_module_callback_network_filter_close(filter: FilterEnvoyPtr, close_type: CloseType);
    /// Returns `envoy_dynamic_module_type_network_read_disable_status`; the bridge keeps its own count instead.
    pub fn envoy_dynamic_module_callback_network_filter_read_disable(filter: FilterEnvoyPtr, disable: bool) -> u32;
    pub fn envoy_dynamic_module_callback_network_filter_get_remote_address(
        filter: FilterEnvoyPtr,
        address: *mut EnvoyBuffer,
        port: *mut u32,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_network_filter_get_connection_id(filter: FilterEnvoyPtr) -> u64;

    /// A handle that may be committed from any thread; Envoy then calls the scheduled hook on this connection's
    /// worker thread, or drops the event when the filter is gone.
    pub fn envoy_dynamic_module_callback_network_filter_scheduler_new(filter: FilterEnvoyPtr) -> SchedulerPtr;
    pub fn envoy_dynamic_module_callback_network_filter_scheduler_commit(scheduler: SchedulerPtr, event_id: u64);
    pub fn envoy_dynamic_module_callback_network_filter_scheduler_delete(scheduler: SchedulerPtr);
}
