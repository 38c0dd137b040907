//! What carries a conversation's bytes. Only the secret channel lives here
//! until the transport seam lands on main.

pub mod secret;
