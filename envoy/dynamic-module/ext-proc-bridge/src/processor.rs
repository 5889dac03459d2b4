//! The gRPC side of one connection: one `NetworkExternalProcessor.Process` stream, run as a task on the module's
//! own tokio runtime. The worker thread hands it requests through a channel; it hands responses and failures back
//! through the [`Inbox`] and wakes the worker with Envoy's scheduler. It also owns the per-chunk deadlines.

use crate::abi;
use crate::proto::{ProcessingRequest, ProcessingResponse, PROCESS_PATH};
use crate::stats::CloseReason;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, ProstCodec, Streaming};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;

/// The largest message either way: a 10 MB Fetch response re-encoded, with room; grpc-java's side is set apart.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// What the task tells the worker thread.
pub enum Event {
    Response(ProcessingResponse),
    /// The stream failed, ended, or a chunk timed out: the connection must close, nothing more may pass.
    Failed(CloseReason, String),
}

/// A request and which direction's deadline it starts.
pub struct Outgoing {
    pub request: ProcessingRequest,
    pub read: bool,
}

/// The connection's Envoy scheduler, deleted when the last holder lets go: the worker (on close or destroy) or a
/// commit in progress on a tokio thread.
struct SchedulerHandle(abi::SchedulerPtr);

// SAFETY: Envoy documents scheduler commit as callable from any thread, and delete needs only exclusive ownership,
// which the Arc around the handle gives.
unsafe impl Send for SchedulerHandle {}
unsafe impl Sync for SchedulerHandle {}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        // SAFETY: created by scheduler_new, deleted once, here
        unsafe { abi::envoy_dynamic_module_callback_network_filter_scheduler_delete(self.0) };
    }
}

struct InboxState {
    events: VecDeque<Event>,
    scheduler: Option<Arc<SchedulerHandle>>,
}

/// Events waiting for the worker thread. The scheduler is committed only when the queue turns non-empty: the
/// worker takes every queued event per wake-up.
pub struct Inbox {
    state: Mutex<InboxState>,
}

impl Inbox {
    pub fn new(scheduler: abi::SchedulerPtr) -> Inbox {
        Inbox {
            state: Mutex::new(InboxState {
                events: VecDeque::new(),
                scheduler: Some(Arc::new(SchedulerHandle(scheduler))),
            }),
        }
    }

    pub fn push(&self, event: Event) {
        let scheduler = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let Some(scheduler) = state.scheduler.clone() else {
                return; // the connection is closing or gone
            };
            state.events.push_back(event);
            if state.events.len() > 1 {
                return; // a wake-up is already on its way
            }
            scheduler
        };
        // Outside the lock: a commit may hold Envoy's last reference to the filter, and then Envoy destroys the
        // filter right here, on this thread, and the destroy hook detaches the scheduler (taking the lock).
        unsafe { abi::envoy_dynamic_module_callback_network_filter_scheduler_commit(scheduler.0, 0) };
    }

    pub fn take_all(&self) -> VecDeque<Event> {
        std::mem::take(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()).events)
    }

    /// No more wake-ups: the scheduler is deleted now, or by the commit in progress when it ends.
    pub fn detach(&self) {
        let scheduler = self.state.lock().unwrap_or_else(|e| e.into_inner()).scheduler.take();
        drop(scheduler);
    }
}

/// Runs one stream until the connection goes (its sender is dropped: the stream is then cancelled, which the
/// filter-service takes as the connection's end) or the stream fails (reported, then the task ends).
pub async fn run(
    channel: Channel,
    metadata: MetadataMap,
    timeout: Duration,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    inbox: Arc<Inbox>,
) {
    let (to_grpc, requests) = mpsc::unbounded_channel::<Frame>();
    // however this task ends, the stream is reset (CANCEL), never ended cleanly
    let to_grpc = CancelOnDrop(to_grpc);
    let mut request = tonic::Request::new(UnboundedReceiverStream::new(requests));
    *request.metadata_mut() = metadata;
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let call = async move {
        grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        grpc.streaming(request, PathAndQuery::from_static(PROCESS_PATH), FrameCodec::default()).await
    };
    tokio::pin!(call);
    let mut inbound: Option<Streaming<ProcessingResponse>> = None;
    let mut deadlines = Deadlines::default();
    loop {
        let deadline = deadlines.earliest();
        tokio::select! {
            out = outgoing.recv() => match out {
                None => return,
                Some(out) => {
                    deadlines.started(out.read, Instant::now() + timeout);
                    if to_grpc.0.send(Frame::Request(out.request)).is_err() {
                        inbox.push(Event::Failed(CloseReason::StreamError, "the request stream is closed".into()));
                        return;
                    }
                }
            },
            started = &mut call, if inbound.is_none() => match started {
                Ok(response) => inbound = Some(response.into_inner()),
                Err(status) => {
                    let reason = format!("stream not opened: {:?} {}", status.code(), status.message());
                    inbox.push(Event::Failed(CloseReason::Unreachable, reason));
                    return;
                }
            },
            message = async { inbound.as_mut().expect("guarded").message().await }, if inbound.is_some() => match message {
                Ok(Some(response)) => {
                    if response.read_data.is_some() {
                        deadlines.answered(true);
                    }
                    if response.write_data.is_some() {
                        deadlines.answered(false);
                    }
                    inbox.push(Event::Response(response));
                }
                // an OK end mid-connection would let later bytes through unprocessed in Envoy's filter: close instead
                Ok(None) => {
                    inbox.push(Event::Failed(CloseReason::StreamError, "the filter-service ended the stream".into()));
                    return;
                }
                Err(status) => {
                    let reason = format!("stream failed: {:?} {}", status.code(), status.message());
                    inbox.push(Event::Failed(CloseReason::StreamError, reason));
                    return;
                }
            },
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let reason = format!("message timeout ({} ms)", timeout.as_millis());
                inbox.push(Event::Failed(CloseReason::Timeout, reason));
                return;
            }
        }
    }
}

/// What goes onto the request stream: a request, or the order to reset the stream.
pub enum Frame {
    Request(ProcessingRequest),
    Cancel,
}

/// Sends [`Frame::Cancel`] when the task ends. Envoy's filter cancels the stream when its connection closes; ending
/// the request stream instead (END_STREAM) would read to the filter-service as "Envoy ended the stream". An error
/// from the encoder is the one way to have hyper reset a request stream after the response started, and an h2
/// CANCEL as its source makes the reset a CANCEL.
struct CancelOnDrop(mpsc::UnboundedSender<Frame>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(Frame::Cancel);
    }
}

/// prost for the messages, plus [`Frame::Cancel`].
#[derive(Default)]
struct FrameCodec {
    prost: ProstCodec<ProcessingRequest, ProcessingResponse>,
}

impl Codec for FrameCodec {
    type Encode = Frame;
    type Decode = ProcessingResponse;
    type Encoder = FrameEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> FrameEncoder {
        FrameEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder(self.prost.decoder())
    }
}

struct FrameEncoder;

impl Encoder for FrameEncoder {
    type Item = Frame;
    type Error = tonic::Status;

    fn encode(&mut self, frame: Frame, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        match frame {
            Frame::Request(request) => {
                prost::Message::encode(&request, dst).map_err(|e| tonic::Status::internal(e.to_string()))
            }
            Frame::Cancel => {
                let mut status = tonic::Status::cancelled("the connection closed");
                status.set_source(Arc::new(h2::Error::from(h2::Reason::CANCEL)));
                Err(status)
            }
        }
    }
}

struct ResponseDecoder(<ProstCodec<ProcessingRequest, ProcessingResponse> as Codec>::Decoder);

impl Decoder for ResponseDecoder {
    type Item = ProcessingResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<ProcessingResponse>, tonic::Status> {
        self.0.decode(src)
    }
}

/// When each unanswered chunk expires, per direction, oldest first (responses come in order per direction).
#[derive(Default)]
struct Deadlines {
    read: VecDeque<Instant>,
    write: VecDeque<Instant>,
}

impl Deadlines {
    fn started(&mut self, read: bool, at: Instant) {
        if read { &mut self.read } else { &mut self.write }.push_back(at);
    }

    fn answered(&mut self, read: bool) {
        if read { &mut self.read } else { &mut self.write }.pop_front();
    }

    fn earliest(&self) -> Option<Instant> {
        match (self.read.front(), self.write.front()) {
            (Some(r), Some(w)) => Some(*r.min(w)),
            (r, w) => r.or(w).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_chunks_in_both_directions_when_answered_in_order_then_the_earliest_unanswered_one_counts() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        assert_eq!(d.earliest(), None);
        d.started(true, t0 + Duration::from_secs(3));
        d.started(false, t0 + Duration::from_secs(2));
        d.started(true, t0 + Duration::from_secs(4));
        assert_eq!(d.earliest(), Some(t0 + Duration::from_secs(2)));
        d.answered(false);
        assert_eq!(d.earliest(), Some(t0 + Duration::from_secs(3)));
        d.answered(true);
        assert_eq!(d.earliest(), Some(t0 + Duration::from_secs(4)));
        d.answered(true);
        assert_eq!(d.earliest(), None);
    }
}
