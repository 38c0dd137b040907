//! A server and a client in one process over `127.0.0.1:0`, through the
//! library: each side sends scripted lines, the client ends with a goodbye
//! (an empty line), and each side prints what it received.
//!
//! Run it with `cargo run --example loopback`.

use duplex::{Console, ConversationOptions, Ending, Input, conversation};
use std::net::{TcpListener, TcpStream};
use std::thread;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let options = ConversationOptions::default();

    let server = thread::Builder::new()
        .name("example-server".into())
        .spawn({
            let options = options.clone();
            move || -> duplex::Result<(Ending, Vec<u8>)> {
                let (stream, peer) = listener.accept().map_err(duplex::Error::Accept)?;
                // The server's input: two lines. It keeps its side open until it
                // hears the client's goodbye, then closes cleanly.
                let (lines, mut input) = Input::channel();
                for line in ["hello from the server\n", "how are you?\n"] {
                    let _ = lines.send(line.as_bytes().to_vec().into());
                }
                let mut heard = Vec::new();
                let mut console = Console::new(&mut input, &mut heard);
                let ending = conversation::run(stream, peer, &options, &mut console)?;
                drop(lines);
                Ok((ending, heard))
            }
        })?;

    // The client says two lines and goodbye; it then still shows what the
    // server sends until the server closes.
    let (lines, mut input) = Input::channel();
    lines.send(b"hello from the client\nfine, thanks\n\n".to_vec().into())?;
    let stream = TcpStream::connect(addr)?;
    let mut shown = Vec::new();
    let mut console = Console::new(&mut input, &mut shown);
    let client_ending = conversation::run(stream, addr, &options, &mut console)?;

    let (server_ending, heard) = server.join().map_err(|_| "the server thread panicked")??;
    println!("client received ({client_ending}):");
    print!("{}", String::from_utf8_lossy(&shown));
    println!("server received ({server_ending}):");
    print!("{}", String::from_utf8_lossy(&heard));
    Ok(())
}

#[cfg(test)]
mod tests {
    /// `cargo test` runs the example, so it cannot rot.
    #[test]
    fn the_example_runs() {
        super::main().expect("the loopback example works");
    }
}
