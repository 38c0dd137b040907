//! Transports below the conversation: how bytes cross the connection.

pub mod tls;
