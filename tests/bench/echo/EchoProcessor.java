import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.NetworkExternalProcessorGrpc;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import java.io.File;

/**
 * The floor of any Java network ext_proc processor (issue 14, docs/envoy-tuning.md): every chunk answered at once with
 * its own bytes, on a Unix socket, with the filter-service's gRPC threading (callbacks on the transport thread). No
 * framing, no Kafka, nothing checked: a benchmark fixture, never a proxy.
 *
 *   java -cp filter-service/target/meshcrypt-filter-service.jar tests/bench/echo/EchoProcessor.java <socket path>
 */
public class EchoProcessor {
    public static void main(String[] args) throws Exception {
        File socket = new File(args[0]);
        socket.delete();
        EpollEventLoopGroup boss = new EpollEventLoopGroup(1);
        // one worker per core, as the filter-service's default (ExtProcServer.Limits.of)
        EpollEventLoopGroup workers = new EpollEventLoopGroup(Runtime.getRuntime().availableProcessors());
        Server server = NettyServerBuilder.forAddress(new DomainSocketAddress(socket))
                .channelType(EpollServerDomainSocketChannel.class)
                .bossEventLoopGroup(boss).workerEventLoopGroup(workers).directExecutor()
                .maxInboundMessageSize(64 << 20)
                .addService(new NetworkExternalProcessorGrpc.NetworkExternalProcessorImplBase() {
                    @Override
                    public StreamObserver<ProcessingRequest> process(StreamObserver<ProcessingResponse> out) {
                        return new StreamObserver<>() {
                            @Override
                            public void onNext(ProcessingRequest request) {
                                ProcessingResponse.Builder answer = ProcessingResponse.newBuilder();
                                if (request.hasReadData()) {
                                    answer.setReadData(echo(request.getReadData()));
                                } else {
                                    answer.setWriteData(echo(request.getWriteData()));
                                }
                                out.onNext(answer.build());
                            }

                            @Override
                            public void onError(Throwable t) {
                            }

                            @Override
                            public void onCompleted() {
                                out.onCompleted();
                            }
                        };
                    }
                })
                .build().start();
        System.out.println("echo processor on " + socket);
        server.awaitTermination();
    }

    static Data echo(Data in) {
        return Data.newBuilder().setData(in.getData()).setEndOfStream(in.getEndOfStream()).build();
    }
}
