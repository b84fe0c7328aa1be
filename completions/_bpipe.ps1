# Generated from bpipe::cli::Cli by tests/cli/generated.rs: do not edit. Refresh with: BPIPE_REGENERATE=1 cargo test --test cli generated

using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'bpipe' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'bpipe'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'bpipe' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write to PATH (created or truncated) instead of standard output; - is standard output. Give it several times to send the stream to each: every output has its own lane of -n chunks (and -m bytes), sharing the chunks, not copying them, so with N outputs at most (N+1) x -n chunks exist. SPEC is PATH[,slow=POLICY][,rate=RATE], that output''s own --slow-output and --rate-limit; a comma in PATH is written twice. PATH may be tcp:HOST:PORT or tcp-listen:[ADDR:]PORT')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write to PATH (created or truncated) instead of standard output; - is standard output. Give it several times to send the stream to each: every output has its own lane of -n chunks (and -m bytes), sharing the chunks, not copying them, so with N outputs at most (N+1) x -n chunks exist. SPEC is PATH[,slow=POLICY][,rate=RATE], that output''s own --slow-output and --rate-limit; a comma in PATH is written twice. PATH may be tcp:HOST:PORT or tcp-listen:[ADDR:]PORT')
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'Chunk size: the most one read moves [1 byte to 1GiB]; 1MiB by default when an input or output is a TCP endpoint')
            [CompletionResult]::new('--chunk-size', '--chunk-size', [CompletionResultType]::ParameterName, 'Chunk size: the most one read moves [1 byte to 1GiB]; 1MiB by default when an input or output is a TCP endpoint')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Queue capacity in chunks')
            [CompletionResult]::new('--chunks', '--chunks', [CompletionResultType]::ParameterName, 'Queue capacity in chunks')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Queue capacity in bytes; with -n, both bounds hold')
            [CompletionResult]::new('--max-buffer', '--max-buffer', [CompletionResultType]::ParameterName, 'Queue capacity in bytes; with -n, both bounds hold')
            [CompletionResult]::new('--on-full', '--on-full', [CompletionResultType]::ParameterName, 'What to do when the queue is full')
            [CompletionResult]::new('--slow-output', '--slow-output', [CompletionResultType]::ParameterName, 'What an output that falls behind the others does when its lane is full (several -o)')
            [CompletionResult]::new('--detach-after', '--detach-after', [CompletionResultType]::ParameterName, 'How long a lane may stay full before a slow=detach output is detached')
            [CompletionResult]::new('--stall-timeout', '--stall-timeout', [CompletionResultType]::ParameterName, 'Exit with status 4 when nothing has moved for DURATION (e.g. 30s), naming the side that stalled')
            [CompletionResult]::new('--drain-timeout', '--drain-timeout', [CompletionResultType]::ParameterName, 'After a stop signal (SIGINT, SIGTERM, SIGHUP), write what was accepted for at most DURATION; the rest counts as bytes_unsent and bpipe exits 128+N. A second signal stops at once')
            [CompletionResult]::new('-L', '-L ', [CompletionResultType]::ParameterName, 'Cap the output rate, a size per second (e.g. 10MiB/s); with several outputs, each one''s')
            [CompletionResult]::new('--rate-limit', '--rate-limit', [CompletionResultType]::ParameterName, 'Cap the output rate, a size per second (e.g. 10MiB/s); with several outputs, each one''s')
            [CompletionResult]::new('--read-rate', '--read-rate', [CompletionResultType]::ParameterName, 'Cap the input rate, a size per second')
            [CompletionResult]::new('--rate-unit', '--rate-unit', [CompletionResultType]::ParameterName, 'What --rate-limit counts; lines needs --lines')
            [CompletionResult]::new('--burst', '--burst', [CompletionResultType]::ParameterName, 'The most that may go out faster than the rate after idle time [default: 1/10 s of the rate, at least 1; in records with --rate-unit lines]. Each read or write carries at most 1/20 s of the rate, whatever the burst')
            [CompletionResult]::new('--stats-format', '--stats-format', [CompletionResultType]::ParameterName, 'Format of the summary and of every stats record')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Print a stats record every DURATION (e.g. 1s, 250ms)')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Print a stats record every DURATION (e.g. 1s, 250ms)')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Expected total size, for percent and ETA in --progress')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Expected total size, for percent and ETA in --progress')
            [CompletionResult]::new('--stats-file', '--stats-file', [CompletionResultType]::ParameterName, 'Also write every stats record to PATH (created or truncated) as JSON Lines')
            [CompletionResult]::new('--spool', '--spool', [CompletionResultType]::ParameterName, 'When the queue is full, append what is read to a spool file in DIR instead of applying --on-full, and replay it in order as the writer frees room. The file has no name (nothing is left behind, even after kill -9), its space is reserved ahead, and memory stays bounded as without it. Needs --spool-max')
            [CompletionResult]::new('--spool-max', '--spool-max', [CompletionResultType]::ParameterName, 'The most the spool holds on disk; when it is full, --on-full applies to what is read (drop-oldest evicts the spool''s oldest whole records)')
            [CompletionResult]::new('--start-at', '--start-at', [CompletionResultType]::ParameterName, 'Hold the writer until the buffer (queue and spool) holds LEVEL, a size or a percentage of its capacity (-m plus --spool-max), or is full, or the input ends; eof waits for the end of the input (store and forward)')
            [CompletionResult]::new('--start-after', '--start-after', [CompletionResultType]::ParameterName, 'Start the writer after DURATION even if the buffer is below --start-at')
            [CompletionResult]::new('--resume-at', '--resume-at', [CompletionResultType]::ParameterName, 'Once the buffer has filled, the reader waits (under --on-full block) until it has drained to LEVEL, a size or a percentage of its capacity, before it reads again')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Answer control requests on the Unix socket PATH instead of the default, $XDG_RUNTIME_DIR/bpipe/PID.sock (else /tmp/bpipe-UID/PID.sock); unlike the default, a PATH that cannot be used stops bpipe before any byte moves')
            [CompletionResult]::new('--metrics-file', '--metrics-file', [CompletionResultType]::ParameterName, 'Write the stats in the Prometheus text format to PATH (replaced whole, by rename) every interval (-i, default 10s) and at exit')
            [CompletionResult]::new('--metrics-listen', '--metrics-listen', [CompletionResultType]::ParameterName, 'Serve the same metrics over HTTP (GET /metrics) on [ADDR:]PORT; 127.0.0.1 unless ADDR is given')
            [CompletionResult]::new('--metrics-label', '--metrics-label', [CompletionResultType]::ParameterName, 'A constant label on every metric, e.g. job=backup (repeatable)')
            [CompletionResult]::new('--query', '--query', [CompletionResultType]::ParameterName, 'Print the stats of the running bpipe PID (or on the socket PATH) and exit')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Change the running bpipe PID (or on the socket PATH): the -L, --read-rate, --on-full, --pause and --resume given here; exit 0 only if every change was accepted')
            [CompletionResult]::new('--pause', '--pause', [CompletionResultType]::ParameterName, 'With --remote: pause reading (in), writing (out), or both')
            [CompletionResult]::new('--resume', '--resume', [CompletionResultType]::ParameterName, 'With --remote: resume reading (in), writing (out), or both')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Read from a TCP connection accepted on [ADDR:]PORT (tcp-listen:[ADDR:]PORT as a FILE)')
            [CompletionResult]::new('--connect', '--connect', [CompletionResultType]::ParameterName, 'Write to a TCP connection to HOST:PORT (tcp:HOST:PORT as an output)')
            [CompletionResult]::new('--max-conns', '--max-conns', [CompletionResultType]::ParameterName, 'Accept N connections on the listening input and merge them (with --merge), then stop listening')
            [CompletionResult]::new('--accept-timeout', '--accept-timeout', [CompletionResultType]::ParameterName, 'Give up waiting for a connection after DURATION (exit 1)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Retry a refused or unreachable connection for at most DURATION, with growing delays (100ms doubling to 2s, with jitter)')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Make at most N more attempts after the first (default: as many as --connect-timeout allows)')
            [CompletionResult]::new('--peer-timeout', '--peer-timeout', [CompletionResultType]::ParameterName, 'A peer that stops answering (keep-alive probes, unacknowledged data) is an error after DURATION; unlike --stall-timeout, a slow but live peer is not')
            [CompletionResult]::new('--tcp-buffer', '--tcp-buffer', [CompletionResultType]::ParameterName, 'Socket send and receive buffer size (SO_SNDBUF, SO_RCVBUF); default: the kernel''s')
            [CompletionResult]::new('--allow', '--allow', [CompletionResultType]::ParameterName, 'Accept connections only from ADDR or the network ADDR/PREFIX (repeatable); others are closed at once and the listener keeps waiting')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'The certificate (PEM) a listener presents, or a connecting side''s client certificate')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'The private key (PEM) of --tls-cert')
            [CompletionResult]::new('--tls-ca', '--tls-ca', [CompletionResultType]::ParameterName, 'Trust listeners whose certificate this CA (PEM) signed, for the host named')
            [CompletionResult]::new('--tls-pin', '--tls-pin', [CompletionResultType]::ParameterName, 'Trust the listener whose certificate has this SHA-256 (hex, of the DER), e.g. a self-signed one')
            [CompletionResult]::new('--tls-client-ca', '--tls-client-ca', [CompletionResultType]::ParameterName, 'Require client certificates signed by this CA (PEM) on listening endpoints')
            [CompletionResult]::new('--append', '--append', [CompletionResultType]::ParameterName, 'Append to the --output files instead of truncating them')
            [CompletionResult]::new('--merge', '--merge', [CompletionResultType]::ParameterName, 'Read all FILEs at once, one reader each, and merge them: whole chunks, or whole records in line mode, taking turns when the queue is full; each input gets an equal share of -n')
            [CompletionResult]::new('--no-splice', '--no-splice', [CompletionResultType]::ParameterName, 'Always use read/write, never the zero-copy splice(2) path')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Line mode: chunks end at newlines, so drops keep or lose whole records')
            [CompletionResult]::new('--lines', '--lines', [CompletionResultType]::ParameterName, 'Line mode: chunks end at newlines, so drops keep or lose whole records')
            [CompletionResult]::new('-0', '-0', [CompletionResultType]::ParameterName, 'Records end at NUL instead of newline (implies --lines)')
            [CompletionResult]::new('--null', '--null', [CompletionResultType]::ParameterName, 'Records end at NUL instead of newline (implies --lines)')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Same as --on-full drop')
            [CompletionResult]::new('--drop', '--drop', [CompletionResultType]::ParameterName, 'Same as --on-full drop')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No stats on standard error: no summary, no interval records (errors and SIGUSR1 snapshots still print; --stats-file still gets every record)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No stats on standard error: no summary, no interval records (errors and SIGUSR1 snapshots still print; --stats-file still gets every record)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'A live status line, redrawn in place, when standard error is a terminal; with several outputs it shows the slowest one''s lag')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'A live status line, redrawn in place, when standard error is a terminal; with several outputs it shows the slowest one''s lag')
            [CompletionResult]::new('--no-control', '--no-control', [CompletionResultType]::ParameterName, 'No control socket: --query, --remote and --top will not see this bpipe')
            [CompletionResult]::new('--top', '--top', [CompletionResultType]::ParameterName, 'A live table, refreshed every second, of every bpipe of this user on this machine')
            [CompletionResult]::new('--once', '--once', [CompletionResultType]::ParameterName, 'With --top: print one table (JSON Lines with --stats-format json) and exit')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'Plain bytes on TCP, for nc, socat or mbuffer on the other side: no hello, no trailer, so a sender that dies looks like a clean end')
            [CompletionResult]::new('--checksum', '--checksum', [CompletionResultType]::ParameterName, 'Digest every byte (BLAKE3); between two bpipes (give it to both) the receiver verifies it (exit 6 on a mismatch). Uses the copy path')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
