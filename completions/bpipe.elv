# Generated from bpipe::cli::Cli by tests/cli/generated.rs: do not edit. Refresh with: BPIPE_REGENERATE=1 cargo test --test cli generated

use builtin;
use str;

set edit:completion:arg-completer[bpipe] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'bpipe'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'bpipe'= {
            cand -o 'Write to PATH (created or truncated) instead of standard output; - is standard output. Give it several times to send the stream to each: every output has its own lane of -n chunks (and -m bytes), sharing the chunks, not copying them, so with N outputs at most (N+1) x -n chunks exist. SPEC is PATH[,slow=POLICY][,rate=RATE], that output''s own --slow-output and --rate-limit; a comma in PATH is written twice. PATH may be tcp:HOST:PORT or tcp-listen:[ADDR:]PORT'
            cand --output 'Write to PATH (created or truncated) instead of standard output; - is standard output. Give it several times to send the stream to each: every output has its own lane of -n chunks (and -m bytes), sharing the chunks, not copying them, so with N outputs at most (N+1) x -n chunks exist. SPEC is PATH[,slow=POLICY][,rate=RATE], that output''s own --slow-output and --rate-limit; a comma in PATH is written twice. PATH may be tcp:HOST:PORT or tcp-listen:[ADDR:]PORT'
            cand -b 'Chunk size: the most one read moves [1 byte to 1GiB]; 1MiB by default when an input or output is a TCP endpoint'
            cand --chunk-size 'Chunk size: the most one read moves [1 byte to 1GiB]; 1MiB by default when an input or output is a TCP endpoint'
            cand -n 'Queue capacity in chunks'
            cand --chunks 'Queue capacity in chunks'
            cand -m 'Queue capacity in bytes; with -n, both bounds hold'
            cand --max-buffer 'Queue capacity in bytes; with -n, both bounds hold'
            cand --on-full 'What to do when the queue is full'
            cand --slow-output 'What an output that falls behind the others does when its lane is full (several -o)'
            cand --detach-after 'How long a lane may stay full before a slow=detach output is detached'
            cand --stall-timeout 'Exit with status 4 when nothing has moved for DURATION (e.g. 30s), naming the side that stalled'
            cand --drain-timeout 'After a stop signal (SIGINT, SIGTERM, SIGHUP), write what was accepted for at most DURATION; the rest counts as bytes_unsent and bpipe exits 128+N. A second signal stops at once'
            cand -L 'Cap the output rate, a size per second (e.g. 10MiB/s); with several outputs, each one''s'
            cand --rate-limit 'Cap the output rate, a size per second (e.g. 10MiB/s); with several outputs, each one''s'
            cand --read-rate 'Cap the input rate, a size per second'
            cand --rate-unit 'What --rate-limit counts; lines needs --lines'
            cand --burst 'The most that may go out faster than the rate after idle time [default: 1/10 s of the rate, at least 1; in records with --rate-unit lines]. Each read or write carries at most 1/20 s of the rate, whatever the burst'
            cand --stats-format 'Format of the summary and of every stats record'
            cand -i 'Print a stats record every DURATION (e.g. 1s, 250ms)'
            cand --interval 'Print a stats record every DURATION (e.g. 1s, 250ms)'
            cand -s 'Expected total size, for percent and ETA in --progress'
            cand --size 'Expected total size, for percent and ETA in --progress'
            cand --stats-file 'Also write every stats record to PATH (created or truncated) as JSON Lines'
            cand --spool 'When the queue is full, append what is read to a spool file in DIR instead of applying --on-full, and replay it in order as the writer frees room. The file has no name (nothing is left behind, even after kill -9), its space is reserved ahead, and memory stays bounded as without it. Needs --spool-max'
            cand --spool-max 'The most the spool holds on disk; when it is full, --on-full applies to what is read (drop-oldest evicts the spool''s oldest whole records)'
            cand --start-at 'Hold the writer until the buffer (queue and spool) holds LEVEL, a size or a percentage of its capacity (-m plus --spool-max), or is full, or the input ends; eof waits for the end of the input (store and forward)'
            cand --start-after 'Start the writer after DURATION even if the buffer is below --start-at'
            cand --resume-at 'Once the buffer has filled, the reader waits (under --on-full block) until it has drained to LEVEL, a size or a percentage of its capacity, before it reads again'
            cand --control 'Answer control requests on the Unix socket PATH instead of the default, $XDG_RUNTIME_DIR/bpipe/PID.sock (else /tmp/bpipe-UID/PID.sock); unlike the default, a PATH that cannot be used stops bpipe before any byte moves'
            cand --metrics-file 'Write the stats in the Prometheus text format to PATH (replaced whole, by rename) every interval (-i, default 10s) and at exit'
            cand --metrics-listen 'Serve the same metrics over HTTP (GET /metrics) on [ADDR:]PORT; 127.0.0.1 unless ADDR is given'
            cand --metrics-label 'A constant label on every metric, e.g. job=backup (repeatable)'
            cand --query 'Print the stats of the running bpipe PID (or on the socket PATH) and exit'
            cand --remote 'Change the running bpipe PID (or on the socket PATH): the -L, --read-rate, --on-full, --pause and --resume given here; exit 0 only if every change was accepted'
            cand --pause 'With --remote: pause reading (in), writing (out), or both'
            cand --resume 'With --remote: resume reading (in), writing (out), or both'
            cand --listen 'Read from a TCP connection accepted on [ADDR:]PORT (tcp-listen:[ADDR:]PORT as a FILE)'
            cand --connect 'Write to a TCP connection to HOST:PORT (tcp:HOST:PORT as an output)'
            cand --max-conns 'Accept N connections on the listening input and merge them (with --merge), then stop listening'
            cand --accept-timeout 'Give up waiting for a connection after DURATION (exit 1)'
            cand --connect-timeout 'Retry a refused or unreachable connection for at most DURATION, with growing delays (100ms doubling to 2s, with jitter)'
            cand --retries 'Make at most N more attempts after the first (default: as many as --connect-timeout allows)'
            cand --peer-timeout 'A peer that stops answering (keep-alive probes, unacknowledged data) is an error after DURATION; unlike --stall-timeout, a slow but live peer is not'
            cand --tcp-buffer 'Socket send and receive buffer size (SO_SNDBUF, SO_RCVBUF); default: the kernel''s'
            cand --allow 'Accept connections only from ADDR or the network ADDR/PREFIX (repeatable); others are closed at once and the listener keeps waiting'
            cand --tls-cert 'The certificate (PEM) a listener presents, or a connecting side''s client certificate'
            cand --tls-key 'The private key (PEM) of --tls-cert'
            cand --tls-ca 'Trust listeners whose certificate this CA (PEM) signed, for the host named'
            cand --tls-pin 'Trust the listener whose certificate has this SHA-256 (hex, of the DER), e.g. a self-signed one'
            cand --tls-client-ca 'Require client certificates signed by this CA (PEM) on listening endpoints'
            cand --append 'Append to the --output files instead of truncating them'
            cand --merge 'Read all FILEs at once, one reader each, and merge them: whole chunks, or whole records in line mode, taking turns when the queue is full; each input gets an equal share of -n'
            cand --no-splice 'Always use read/write, never the zero-copy splice(2) path'
            cand -l 'Line mode: chunks end at newlines, so drops keep or lose whole records'
            cand --lines 'Line mode: chunks end at newlines, so drops keep or lose whole records'
            cand -0 'Records end at NUL instead of newline (implies --lines)'
            cand --null 'Records end at NUL instead of newline (implies --lines)'
            cand -d 'Same as --on-full drop'
            cand --drop 'Same as --on-full drop'
            cand -q 'No stats on standard error: no summary, no interval records (errors and SIGUSR1 snapshots still print; --stats-file still gets every record)'
            cand --quiet 'No stats on standard error: no summary, no interval records (errors and SIGUSR1 snapshots still print; --stats-file still gets every record)'
            cand -p 'A live status line, redrawn in place, when standard error is a terminal; with several outputs it shows the slowest one''s lag'
            cand --progress 'A live status line, redrawn in place, when standard error is a terminal; with several outputs it shows the slowest one''s lag'
            cand --no-control 'No control socket: --query, --remote and --top will not see this bpipe'
            cand --top 'A live table, refreshed every second, of every bpipe of this user on this machine'
            cand --once 'With --top: print one table (JSON Lines with --stats-format json) and exit'
            cand --raw 'Plain bytes on TCP, for nc, socat or mbuffer on the other side: no hello, no trailer, so a sender that dies looks like a clean end'
            cand --checksum 'Digest every byte (BLAKE3); between two bpipes (give it to both) the receiver verifies it (exit 6 on a mismatch). Uses the copy path'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
    ]
    $completions[$command]
}
