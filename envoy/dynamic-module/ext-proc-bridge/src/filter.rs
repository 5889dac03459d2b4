//! One downstream connection, on its Envoy worker thread: every chunk Envoy reads (client -> broker) or is about to
//! write (broker -> client) is drained from Envoy's buffer and sent to the filter-service; only the bytes the
//! filter-service answers are passed on, in answer order. Nothing passes unprocessed: any failure closes.
//!
//! Envoy may call back into the module from inside a callback the module makes (closing the connection raises the
//! close event at once), so the state is in a RefCell that is never borrowed across a call into Envoy.

use crate::abi::{self, CloseType, DataStatus, EnvoyBuffer, FilterEnvoyPtr};
use crate::config::{self, BridgeConfig};
use crate::processor::{self, Event, Inbox, Outgoing};
use crate::proto::{self, Data, ProcessingRequest, ProcessingResponse};
use crate::stats::{CloseReason, Stats};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::Channel;

/// What every connection of one filter config shares.
pub struct Shared {
    pub config: BridgeConfig,
    /// One HTTP/2 connection to the filter-service, each downstream connection a stream on it.
    pub channel: Channel,
    pub runtime: &'static Runtime,
    pub stats: Stats,
}

pub struct Filter {
    envoy: FilterEnvoyPtr,
    shared: Arc<Shared>,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    inbox: Option<Arc<Inbox>>,
    outgoing: Option<mpsc::UnboundedSender<Outgoing>>,
    read: Direction,
    write: Direction,
    /// Reading paused by the bridge (its own readDisable count, balanced on resume).
    read_paused: bool,
    closed: bool,
}

/// Bytes of one direction that are with the filter-service: one entry per unanswered chunk, oldest first.
#[derive(Default)]
struct Direction {
    pending: VecDeque<usize>,
    in_flight: usize,
}

impl Direction {
    fn sent(&mut self, len: usize) {
        self.pending.push_back(len);
        self.in_flight += len;
    }

    /// The oldest chunk's answer came: its length.
    fn answered(&mut self) -> usize {
        let len = self.pending.pop_front().unwrap_or(0);
        self.in_flight -= len;
        len
    }
}

/// What to do on Envoy's side once the state is no longer borrowed.
enum Action {
    InjectRead(Data),
    InjectWrite(Data),
    PauseReading,
    ResumeReading,
    /// Why, for the log, and which fail-closed counter (none for the filter-service's own CLOSE).
    Close(CloseType, Option<CloseReason>, String),
}

impl Filter {
    pub fn new(envoy: FilterEnvoyPtr, shared: Arc<Shared>) -> Filter {
        Filter { envoy, shared, state: RefCell::new(State::default()) }
    }

    /// Opens the connection's stream, with the same request headers Envoy's filter sends.
    pub fn on_new_connection(&self) -> DataStatus {
        // SAFETY: `self.envoy` is the live filter; the scheduler is deleted in `on_destroy`.
        let scheduler = unsafe { abi::envoy_dynamic_module_callback_network_filter_scheduler_new(self.envoy) };
        let inbox = Arc::new(Inbox::new(scheduler));
        let (tx, rx) = mpsc::unbounded_channel();
        let metadata = self.metadata();
        let shared = &self.shared;
        shared.runtime.spawn(processor::run(
            shared.channel.clone(),
            metadata,
            shared.config.message_timeout,
            rx,
            inbox.clone(),
        ));
        shared.stats.stream_opened(self.envoy);
        let mut state = self.state.borrow_mut();
        state.inbox = Some(inbox);
        state.outgoing = Some(tx);
        DataStatus::Continue
    }

    fn metadata(&self) -> MetadataMap {
        let mut map = MetadataMap::new();
        for header in &self.shared.config.initial_metadata {
            let value = if header.value == config::DOWNSTREAM_REMOTE_ADDRESS {
                self.remote_address()
            } else {
                header.value.clone()
            };
            // validated when the config was loaded
            if let (Ok(key), Ok(value)) =
                (MetadataKey::from_bytes(header.key.as_bytes()), MetadataValue::try_from(value.as_str()))
            {
                map.insert(key, value);
            }
        }
        map
    }

    fn remote_address(&self) -> String {
        let mut address = EnvoyBuffer { ptr: std::ptr::null(), length: 0 };
        let mut port = 0u32;
        // SAFETY: Envoy fills both out-parameters; the address stays valid during this call, and is copied.
        let found =
            unsafe { abi::envoy_dynamic_module_callback_network_filter_get_remote_address(self.envoy, &mut address, &mut port) };
        if !found || address.ptr.is_null() {
            return String::new();
        }
        let ip = unsafe { std::slice::from_raw_parts(address.ptr, address.length) };
        config::format_address(&String::from_utf8_lossy(ip), port)
    }

    /// client -> broker: Envoy read `length` bytes.
    pub fn on_read(&self, length: usize, end_of_stream: bool) -> DataStatus {
        let data = self.take(true, length);
        self.send(true, data, end_of_stream);
        DataStatus::StopIteration
    }

    /// broker -> client: bytes on their way to the client.
    pub fn on_write(&self, length: usize, end_of_stream: bool) -> DataStatus {
        let data = self.take(false, length);
        self.send(false, data, end_of_stream);
        DataStatus::StopIteration
    }

    /// Copies the current buffer of one direction out and drains it from Envoy.
    fn take(&self, read: bool, length: usize) -> Vec<u8> {
        if length == 0 {
            return Vec::new();
        }
        let envoy = self.envoy;
        // SAFETY: called from on_read/on_write, where Envoy's current buffer of that direction is valid; the chunk
        // pointers are used before the drain.
        unsafe {
            let count = if read {
                abi::envoy_dynamic_module_callback_network_filter_get_read_buffer_chunks_size(envoy)
            } else {
                abi::envoy_dynamic_module_callback_network_filter_get_write_buffer_chunks_size(envoy)
            };
            let mut chunks = vec![EnvoyBuffer { ptr: std::ptr::null(), length: 0 }; count];
            let ok = if read {
                abi::envoy_dynamic_module_callback_network_filter_get_read_buffer_chunks(envoy, chunks.as_mut_ptr())
            } else {
                abi::envoy_dynamic_module_callback_network_filter_get_write_buffer_chunks(envoy, chunks.as_mut_ptr())
            };
            let mut data = Vec::with_capacity(length);
            if ok {
                for chunk in &chunks {
                    if !chunk.ptr.is_null() {
                        data.extend_from_slice(std::slice::from_raw_parts(chunk.ptr, chunk.length));
                    }
                }
            }
            if read {
                abi::envoy_dynamic_module_callback_network_filter_drain_read_buffer(envoy, data.len());
            } else {
                abi::envoy_dynamic_module_callback_network_filter_drain_write_buffer(envoy, data.len());
            }
            data
        }
    }

    fn send(&self, read: bool, data: Vec<u8>, end_of_stream: bool) {
        let (action, len) = {
            let mut state = self.state.borrow_mut();
            if state.closed || (data.is_empty() && !end_of_stream) {
                return; // drained and dropped: a closing connection forwards nothing
            }
            let len = data.len();
            let chunk = Some(Data { data, end_of_stream });
            let request = if read {
                ProcessingRequest { read_data: chunk, write_data: None }
            } else {
                ProcessingRequest { read_data: None, write_data: chunk }
            };
            let sent = state.outgoing.as_ref().is_some_and(|tx| tx.send(Outgoing { request, read }).is_ok());
            let config = &self.shared.config;
            let direction = if read { &mut state.read } else { &mut state.write };
            direction.sent(len);
            let in_flight = direction.in_flight;
            let action = if !sent {
                let reason = "the filter-service stream is gone".into();
                Some(Action::Close(CloseType::NoFlush, Some(CloseReason::StreamError), reason))
            } else if in_flight > config.max_in_flight_bytes {
                let reason = format!("{in_flight} bytes with the filter-service");
                Some(Action::Close(CloseType::NoFlush, Some(CloseReason::InFlightCap), reason))
            } else if read && in_flight >= config.read_pause_bytes && !state.read_paused {
                state.read_paused = true;
                // Envoy keeps the client's bytes in its socket until the filter-service catches up
                Some(Action::PauseReading)
            } else {
                None
            };
            (action, len)
        };
        // outside the borrow, like every call into Envoy
        self.shared.stats.in_flight(self.envoy, len as i64);
        if let Some(action) = action {
            self.apply(action);
        }
    }

    /// On the worker thread, woken by the processor task: applies every response and failure, in order.
    pub fn on_scheduled(&self) {
        let Some(inbox) = self.state.borrow().inbox.clone() else { return };
        for event in inbox.take_all() {
            if self.state.borrow().closed {
                return;
            }
            for action in self.actions(event) {
                self.apply(action);
            }
        }
    }

    fn actions(&self, event: Event) -> Vec<Action> {
        let response: ProcessingResponse = match event {
            Event::Failed(kind, reason) => return vec![Action::Close(CloseType::NoFlush, Some(kind), reason)],
            Event::Response(response) => response,
        };
        let mut state = self.state.borrow_mut();
        let mut actions = Vec::with_capacity(2);
        let mut answered = 0;
        if let Some(data) = response.read_data {
            answered += state.read.answered();
            actions.push(Action::InjectRead(data));
            if state.read_paused && state.read.in_flight < self.shared.config.read_pause_bytes / 2 {
                state.read_paused = false;
                actions.push(Action::ResumeReading);
            }
        }
        if let Some(data) = response.write_data {
            answered += state.write.answered();
            actions.push(Action::InjectWrite(data));
        }
        match response.connection_status {
            proto::CONNECTION_CLOSE => {
                actions.push(Action::Close(CloseType::FlushWrite, None, "the filter-service closed".into()))
            }
            proto::CONNECTION_CLOSE_RST => actions.push(Action::Close(
                CloseType::AbortReset,
                Some(CloseReason::Reset),
                "the filter-service reset the connection".into(),
            )),
            _ => {}
        }
        drop(state);
        self.shared.stats.in_flight(self.envoy, -(answered as i64));
        actions
    }

    fn apply(&self, action: Action) {
        if self.state.borrow().closed {
            return;
        }
        let envoy = self.envoy;
        // SAFETY: called on the worker thread while the filter is alive; Envoy copies the bytes before returning.
        unsafe {
            match action {
                Action::InjectRead(d) => abi::envoy_dynamic_module_callback_network_filter_inject_read_data(
                    envoy,
                    d.data.as_ptr(),
                    d.data.len(),
                    d.end_of_stream,
                ),
                Action::InjectWrite(d) => abi::envoy_dynamic_module_callback_network_filter_inject_write_data(
                    envoy,
                    d.data.as_ptr(),
                    d.data.len(),
                    d.end_of_stream,
                ),
                Action::PauseReading => {
                    abi::envoy_dynamic_module_callback_network_filter_read_disable(envoy, true);
                }
                Action::ResumeReading => {
                    abi::envoy_dynamic_module_callback_network_filter_read_disable(envoy, false);
                }
                Action::Close(close_type, kind, reason) => {
                    let id = abi::envoy_dynamic_module_callback_network_filter_get_connection_id(envoy);
                    eprintln!("meshcrypt-ext-proc-bridge: connection {id} closed: {reason}");
                    if let Some(kind) = kind {
                        self.shared.stats.closed(envoy, kind);
                    }
                    self.stop();
                    abi::envoy_dynamic_module_callback_network_filter_close(envoy, close_type);
                }
            }
        }
    }

    /// The connection is closing: nothing more is sent or passed on, the stream is cancelled, and no more wake-ups
    /// are asked for.
    fn stop(&self) {
        let (inbox, dropped) = {
            let mut state = self.state.borrow_mut();
            // the bytes still with the filter-service leave the gauge once, with the connection
            let dropped = if state.closed { 0 } else { state.read.in_flight + state.write.in_flight };
            state.closed = true;
            state.outgoing = None;
            (state.inbox.clone(), dropped)
        };
        self.shared.stats.in_flight(self.envoy, -(dropped as i64));
        if let Some(inbox) = inbox {
            inbox.detach();
        }
    }

    pub fn on_event(&self, event: u32) {
        if event == abi::EVENT_REMOTE_CLOSE || event == abi::EVENT_LOCAL_CLOSE {
            self.stop();
        }
    }

    /// May run on a tokio thread: Envoy destroys the filter where its last reference goes, which can be a scheduler
    /// commit (see `Inbox::push`). Nothing else touches the filter by then.
    pub fn on_destroy(&self) {
        self.stop();
    }
}
