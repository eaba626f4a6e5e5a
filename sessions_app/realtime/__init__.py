"""The socket machinery of the sessions floor: the consumer and its handshake steps' stores
(connection limits, the session stream), the publish path, the channel layer of the embedded
mode, the server process's life (maintenance, watchdog, graceful shutdown), the error path, the
protocol export and the metrics. Import from the module that defines a name."""
