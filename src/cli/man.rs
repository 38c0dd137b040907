//! `duplex --generate man`: one complete page, `duplex(1)`, for both
//! subcommands. The options come from the same clap definition as `--help`
//! (so an option added there is documented here too); the prose — endings,
//! raw mode, rooms, the view, exit status, environment — is written here,
//! because it is what `man duplex` readers come for and clap has no place
//! for it.

use clap::{Arg, Command};
use std::fmt::Write as _;

/// The page, in roff.
pub(super) fn page(top: &Command) -> String {
    let version = top.get_version().unwrap_or("");
    let mut page = String::new();
    let p = &mut page;
    let _ = writeln!(
        p,
        ".TH DUPLEX 1 \"\" \"duplex {version}\" \"User Commands\""
    );
    section(p, "NAME");
    line(
        p,
        "duplex \\- a threaded, full-duplex TCP chat tool: a friendlier, safer netcat",
    );
    section(p, "SYNOPSIS");
    for sub in top.get_subcommands() {
        let _ = write!(p, ".B duplex {}\n[\\fIOPTIONS\\fR]", sub.get_name());
        for arg in sub.get_positionals() {
            let _ = write!(p, " \\fI{}\\fR", arg_value_name(arg));
        }
        p.push_str("\n.br\n");
    }
    p.push_str(".B duplex \\-\\-generate\n\\fIKIND\\fR\n");
    section(p, "DESCRIPTION");
    para(
        p,
        "One side runs \\fBduplex serve\\fR, the other \\fBduplex connect\\fR; both can type \
         (or pipe) at the same time, and each sees the other's lines as they arrive. When \
         stdout is not a terminal it receives exactly the bytes the peer sent (minus the \
         goodbye line in chat mode): no markers, no colour, no status text. Status lines go \
         to stderr. When stdin and stdout are both terminals, an interactive view with a \
         line editor is shown instead (see \\fBTERMINAL VIEW\\fR).",
    );
    para(
        p,
        "Options may be given before or after the subcommand. \\fISECS\\fR takes fractions \
         (\\fB0.5\\fR) up to one year. \\fIPORT\\fR 0 asks the system for a free port; the \
         first stderr line, \\fBlistening on\\fR \\fIADDR\\fR, says which.",
    );

    for sub in top.get_subcommands() {
        section(p, &format!("duplex {}", sub.get_name()).to_uppercase());
        para(
            p,
            &escape(&sub.get_about().map(|a| a.to_string()).unwrap_or_default()),
        );
        for arg in sub.get_positionals() {
            item(p, &format!("\\fI{}\\fR", arg_value_name(arg)), arg);
        }
    }

    // Options both subcommands take, then each one's own.
    let [serve, connect] = ["serve", "connect"].map(|name| {
        top.find_subcommand(name)
            .map(|s| options(s).collect::<Vec<_>>())
            .unwrap_or_default()
    });
    let shared = |arg: &Arg| connect.iter().any(|c| c.get_id() == arg.get_id());
    section(p, "OPTIONS");
    for arg in serve.iter().filter(|a| shared(a)) {
        option(p, arg);
    }
    sub_section(p, "serve only");
    for arg in serve.iter().filter(|a| !shared(a)) {
        option(p, arg);
    }
    sub_section(p, "connect only");
    for arg in connect
        .iter()
        .filter(|c| !serve.iter().any(|s| s.get_id() == c.get_id()))
    {
        option(p, arg);
    }
    sub_section(p, "alone");
    for arg in options(top) {
        option(p, arg);
    }
    para(
        p,
        "\\fB\\-h\\fR, \\fB\\-\\-help\\fR prints help (\\fB\\-h\\fR a summary); \
         \\fB\\-V\\fR, \\fB\\-\\-version\\fR prints the version.",
    );

    section(p, "HOW A CONVERSATION ENDS");
    para(
        p,
        "In chat mode (the default) an \\fBempty line\\fR \\(em or the \\fBend of input\\fR \
         (Ctrl\\-D on an empty prompt, the end of a pipe or file) \\(em is a goodbye, from \
         either side. The side that says goodbye sends everything it had read up to that \
         point, half-closes its socket (the peer sees EOF), and keeps showing what the peer \
         still sends until the peer closes too, or has been silent for \\fB\\-\\-linger\\fR \
         seconds: a reply that is still arriving is never cut off. The side that hears the \
         goodbye stops taking input for this peer, sends what it had already read, \
         half-closes, and waits for the peer to close, so that closing never turns into a \
         TCP reset. The goodbye line itself is never shown. Input after an empty-line \
         goodbye is not sent: \\fBserve\\fR keeps it for its next peer, \\fBconnect\\fR says \
         how many bytes it held back.",
    );
    para(
        p,
        "Ctrl\\-C (or SIGTERM) closes every conversation the same graceful way and exits \
         130; a second one exits at once. A closed stdout (\\fBduplex connect ... | head \
         \\-1\\fR) ends the conversation the same way, and exits 0. \\fB\\-\\-linger 0\\fR \
         closes right after sending, without waiting for the peer. \\fB\\-\\-idle\\-timeout\\fR \
         ends a conversation with no traffic either way for that long.",
    );

    section(p, "RAW MODE");
    para(
        p,
        "With \\fB\\-\\-raw\\fR there are no line rules: bytes are relayed exactly, blank lines \
         are data, and there is no goodbye. Each direction ends on its own end of file, and \
         the conversation ends when both have. When stdin is a terminal, the peer's EOF ends \
         it (as netcat's listener does), so \\fBduplex serve \\-\\-once \\-\\-raw 9000 > \
         file\\fR typed by a person ends when the file has arrived. There is no terminal view \
         in raw mode.",
    );
    para(
        p,
        "A raw transfer shows its progress. While it runs, when stderr is a terminal (and \
         not \\fB\\-q\\fR, \\fB\\-v\\fR or \\fBRUST_LOG\\fR, nor stdin and stdout both \
         terminals), one line on stderr is redrawn ten times a second: bytes sent and \
         received, the rate over the last seconds, and, when stdin is a regular file, a bar, \
         the percentage and the time left. It is erased when the conversation ends, however \
         it ends; once the peer's bytes reach a terminal stdout it steps aside. \
         \\fB\\-\\-progress\\fR draws it even onto a stderr that is not a terminal or with \
         \\fB\\-q\\fR; \\fB\\-\\-no\\-progress\\fR never draws it. At the end of every raw \
         conversation, unless \\fB\\-q\\fR, one summary line follows: \
         \\fBsent 1.00 GiB, received 0 B in 0.52 s (1.92 GiB/s)\\fR (binary units; the rate \
         counts both directions).",
    );

    section(p, "ONE PEER AT A TIME");
    para(
        p,
        "\\fBserve\\fR without \\fB\\-\\-room\\fR has one conversation at a time. A peer that \
         connects meanwhile is held by the kernel's backlog and served, with everything it \
         already sent, when the conversation before it ends; it is not told that the server \
         is busy (its \\fBconnect\\fR cannot tell a busy server from a quiet one). Lines read \
         on \\fBserve\\fR while nobody is connected wait for the next peer.",
    );

    section(p, "ROOMS");
    para(
        p,
        "\\fBduplex serve \\-\\-room\\fR \\fIPORT\\fR takes many peers at once (at most \
         \\fB\\-\\-max\\-peers\\fR). A line from a peer goes to every other peer and to the \
         server's stdout, labelled with the sender's address, \\fB[127.0.0.1:50012] hello\\fR; \
         a peer never gets its own lines back. The server's input lines go to every peer as \
         \\fB[server] ...\\fR. Notices start with \\fB* \\fR (joined, left, evicted: too slow, \
         room full, room closing). A peer leaves with a goodbye; the server's goodbye ends \
         the room for everyone. A line over 64 KiB is not relayed and its sender is \
         disconnected. A peer that stops reading is evicted once its bounded queue is full; \
         it never stalls the others. \\fB\\-\\-room\\fR with \\fB\\-\\-raw\\fR or \
         \\fB\\-\\-once\\fR is a usage error.",
    );

    section(p, "TERMINAL VIEW");
    para(
        p,
        "When stdin and stdout are terminals (chat mode, not \\fB\\-\\-recv\\-only\\fR), lines \
         from the peer are shown above a prompt as \\fB< \\fR\\fIline\\fR, status lines as \
         \\fB\\-\\- \\fR\\fIline\\fR, and typing is never disturbed by what arrives. Control \
         bytes from the peer are shown as \\fB^X\\fR, never obeyed. Keys are emacs style: \
         arrows, Home/End, Ctrl\\-A/E/U/W, Up for earlier lines, Ctrl\\-R to search them; Tab \
         is sent as a tab. Enter on an empty prompt or Ctrl\\-D says goodbye; after it (or a \
         first Ctrl\\-C) the prompt takes no more input and says how long it waits for the \
         peer to close. A pasted block is sent line by line; its blank lines are left out \
         (chat mode cannot send them) and the view says so. Ctrl\\-Z does nothing in the view \
         (it never empties the line). Lines \
         typed while nobody is connected are marked \\fB(waiting)\\fR and go to the next \
         peer. The view draws on the terminal even when stderr is redirected; status lines \
         then go to both.",
    );

    section(p, "EXIT STATUS");
    for (code, meaning) in [
        (
            "0",
            "the conversation(s) ended by goodbye or EOF from either side, --once done, \
             linger or idle timeout, or stdout closed by its reader",
        ),
        (
            "1",
            "could not bind, resolve or connect; the peer reset a conversation of connect \
             or serve --once; an I/O error \\(em with one line on stderr",
        ),
        ("2", "bad command line or option value"),
        ("130", "Ctrl-C or SIGTERM, after closing gracefully"),
    ] {
        let _ = writeln!(p, ".TP\n.B {code}\n{}", escape(meaning));
    }

    section(p, "ENVIRONMENT");
    let mut env = vec![
        (
            "NO_COLOR",
            "when set and not empty, no colour in the terminal view or in diagnostics \
             (as --color never, unless --color always)"
                .to_owned(),
        ),
        (
            "RUST_LOG",
            "diagnostics filter instead of -v, in tracing's target syntax: debug, \
             duplex=debug, duplex=trace,warn"
                .to_owned(),
        ),
    ];
    if let Some(secret) = top
        .find_subcommand("connect")
        .and_then(|c| c.get_arguments().find(|a| a.get_id() == "secret"))
    {
        let help = secret.get_help().map(|h| h.to_string()).unwrap_or_default();
        env.push((
            "DUPLEX_SECRET",
            format!("the shared secret for --secret, kept out of the process list. {help}"),
        ));
    } else {
        env.push((
            "DUPLEX_SECRET",
            "the shared secret of an encrypted conversation, when this build has --secret"
                .to_owned(),
        ));
    }
    for (name, meaning) in env {
        let _ = writeln!(p, ".TP\n.B {name}\n{}", escape(&meaning));
    }

    section(p, "EXAMPLES");
    for (what, command) in [
        (
            "Chat: on machine A, then on machine B",
            "duplex serve 9000\nduplex connect hostA 9000",
        ),
        (
            "Keep the server to this machine",
            "duplex serve -b 127.0.0.1 9000",
        ),
        (
            "Send a line and print the reply, ending cleanly",
            "printf 'hello\\n' | duplex connect host 9000",
        ),
        (
            "Send a file, byte for byte",
            "duplex serve --once --raw 9000 > file\nduplex connect --raw host 9000 < file",
        ),
        (
            "A loopback test server: read its port from the first stderr line",
            "duplex serve -q --recv-only -b 127.0.0.1 0",
        ),
        ("A chat room", "duplex serve --room 9000"),
        (
            "Install the page and completions",
            "duplex --generate man > duplex.1 && man ./duplex.1\n\
             mkdir -p ~/.local/share/bash-completion/completions\n\
             duplex --generate complete-bash > ~/.local/share/bash-completion/completions/duplex",
        ),
    ] {
        let _ = writeln!(p, ".PP\n{}\n.PP\n.RS\n.nf", escape(what));
        for l in command.lines() {
            let _ = writeln!(p, "{}", escape(l));
        }
        p.push_str(".fi\n.RE\n");
    }

    section(p, "SEE ALSO");
    line(p, "nc(1), socat(1), ncat(1)");
    page
}

/// An option's value name (`SECS`), or its id in capitals.
fn arg_value_name(arg: &Arg) -> String {
    arg.get_value_names()
        .and_then(|n| n.first())
        .map(|n| n.to_string())
        .unwrap_or_else(|| arg.get_id().to_string().to_uppercase())
}

/// The options of `command`, without `-h`/`-V` (said once, in prose).
fn options(command: &Command) -> impl Iterator<Item = &Arg> {
    command
        .get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
}

fn option(p: &mut String, arg: &Arg) {
    let mut head = String::new();
    if let Some(short) = arg.get_short() {
        let _ = write!(head, "\\fB\\-{short}\\fR, ");
    }
    if let Some(long) = arg.get_long() {
        let _ = write!(head, "\\fB\\-\\-{}\\fR", long.replace('-', "\\-"));
    }
    if arg.get_action().takes_values() {
        let _ = write!(head, " \\fI{}\\fR", arg_value_name(arg));
    }
    item(p, &head, arg);
}

/// One `.TP` entry: `head`, then the option's help, its choices and default.
fn item(p: &mut String, head: &str, arg: &Arg) {
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut text = help.trim().to_owned();
    let choices: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_owned())
        .collect();
    if !choices.is_empty() && arg.get_action().takes_values() {
        let _ = write!(text, " One of: {}.", choices.join(", "));
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() {
        let _ = write!(text, " Default: {}.", defaults.join(", "));
    }
    let _ = writeln!(p, ".TP\n{head}\n{}", escape(&text));
}

fn section(p: &mut String, name: &str) {
    let _ = writeln!(p, ".SH \"{name}\"");
}

fn sub_section(p: &mut String, name: &str) {
    let _ = writeln!(p, ".SS \"{name}\"");
}

fn para(p: &mut String, text: &str) {
    let _ = writeln!(p, ".PP\n{text}");
}

fn line(p: &mut String, text: &str) {
    let _ = writeln!(p, "{text}");
}

/// Plain text as roff: backslashes and hyphens escaped, and no line may
/// start with a control character. Text already containing roff escapes
/// is not passed through here.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    text.lines()
        .map(|l| {
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
