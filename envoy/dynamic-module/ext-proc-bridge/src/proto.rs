//! `envoy.service.network_ext_proc.v3` (api/envoy/service/network_ext_proc/v3/network_external_processor.proto,
//! Envoy 1.40, Apache-2.0): the four messages of one `NetworkExternalProcessor.Process` stream, as prost structs.
//! Field numbers and types are the proto's; fields the bridge never sets or reads (request `metadata` = 3, response
//! `dynamic_metadata` = 5) are left out, and prost skips them on decode like any unknown field.

/// The gRPC method Envoy's network ext_proc filter calls.
pub const PROCESS_PATH: &str = "/envoy.service.network_ext_proc.v3.NetworkExternalProcessor/Process";

#[derive(Clone, PartialEq, prost::Message)]
pub struct Data {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
    #[prost(bool, tag = "2")]
    pub end_of_stream: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProcessingRequest {
    /// client -> upstream
    #[prost(message, optional, tag = "1")]
    pub read_data: Option<Data>,
    /// upstream -> client
    #[prost(message, optional, tag = "2")]
    pub write_data: Option<Data>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProcessingResponse {
    #[prost(message, optional, tag = "1")]
    pub read_data: Option<Data>,
    #[prost(message, optional, tag = "2")]
    pub write_data: Option<Data>,
    /// `DataProcessedStatus`: never read, as by Envoy's own filter.
    #[prost(int32, tag = "3")]
    pub data_processing_status: i32,
    /// `ConnectionStatus`: CONTINUE = 0, CLOSE = 1, CLOSE_RST = 2.
    #[prost(int32, tag = "4")]
    pub connection_status: i32,
}

pub const CONNECTION_CLOSE: i32 = 1;
pub const CONNECTION_CLOSE_RST: i32 = 2;

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn given_a_read_chunk_when_encoded_then_the_bytes_are_those_of_the_proto() {
        let request = ProcessingRequest {
            read_data: Some(Data { data: b"ab".to_vec(), end_of_stream: true }),
            write_data: None,
        };
        // field 1 (len 6) { field 1 (len 2) "ab", field 2 varint 1 }
        assert_eq!(request.encode_to_vec(), vec![0x0a, 6, 0x0a, 2, b'a', b'b', 0x10, 1]);
    }

    #[test]
    fn given_a_response_with_dynamic_metadata_when_decoded_then_it_is_skipped() {
        // write_data { data "x" }, connection_status CLOSE_RST, dynamic_metadata (field 5) {}
        let bytes = [0x12, 3, 0x0a, 1, b'x', 0x20, 2, 0x2a, 0];
        let response = ProcessingResponse::decode(&bytes[..]).unwrap();
        assert_eq!(response.write_data.unwrap().data, b"x".to_vec());
        assert_eq!(response.connection_status, CONNECTION_CLOSE_RST);
        assert!(response.read_data.is_none());
    }
}
