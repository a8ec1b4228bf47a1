"""The OSC daemon: wire protocol (protocol), op registry and requests (registry), the core ops (ops),
per-client sessions (session), the server (server) and a client (client). Imports core, io, runtime."""
