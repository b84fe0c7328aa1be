# Generated from bpipe::cli::Cli by tests/cli/generated.rs: do not edit. Refresh with: BPIPE_REGENERATE=1 cargo test --test cli generated
complete -c bpipe -s o -l output -d 'Write to PATH (created or truncated) instead of standard output; - is standard output. Give it several times to send the stream to each: every output has its own lane of -n chunks (and -m bytes), sharing the chunks, not copying them, so with N outputs at most (N+1) x -n chunks exist. SPEC is PATH[,slow=POLICY][,rate=RATE], that output\'s own --slow-output and --rate-limit; a comma in PATH is written twice. PATH may be tcp:HOST:PORT or tcp-listen:[ADDR:]PORT' -r -F
complete -c bpipe -s b -l chunk-size -d 'Chunk size: the most one read moves [1 byte to 1GiB]; 1MiB by default when an input or output is a TCP endpoint' -r -f
complete -c bpipe -s n -l chunks -d 'Queue capacity in chunks' -r -f
complete -c bpipe -s m -l max-buffer -d 'Queue capacity in bytes; with -n, both bounds hold' -r -f
complete -c bpipe -l on-full -d 'What to do when the queue is full' -r -f -a "block\t'Stop reading until the writer frees room; nothing is lost'
drop\t'Discard the newly read chunk (drop-newest)'
drop-oldest\t'Discard the oldest queued chunk and keep the new one'
fail\t'Stop reading, write what was accepted, exit with status 3'"
complete -c bpipe -l slow-output -d 'What an output that falls behind the others does when its lane is full (several -o)' -r -f -a "block\t'Hold the reader back, and with it every output; nothing is lost'
drop\t'Skip the newest chunks (whole records in line mode) for this output only'
detach\t'Close this output after --detach-after of a full lane, or when a write to it fails'"
complete -c bpipe -l detach-after -d 'How long a lane may stay full before a slow=detach output is detached' -r -f
complete -c bpipe -l stall-timeout -d 'Exit with status 4 when nothing has moved for DURATION (e.g. 30s), naming the side that stalled' -r -f
complete -c bpipe -l drain-timeout -d 'After a stop signal (SIGINT, SIGTERM, SIGHUP), write what was accepted for at most DURATION; the rest counts as bytes_unsent and bpipe exits 128+N. A second signal stops at once' -r -f
complete -c bpipe -s L -l rate-limit -d 'Cap the output rate, a size per second (e.g. 10MiB/s); with several outputs, each one\'s' -r -f
complete -c bpipe -l read-rate -d 'Cap the input rate, a size per second' -r -f
complete -c bpipe -l rate-unit -d 'What --rate-limit counts; lines needs --lines' -r -f -a "bytes\t'Rates count bytes'
lines\t'Rates count records (line mode only)'"
complete -c bpipe -l burst -d 'The most that may go out faster than the rate after idle time [default: 1/10 s of the rate, at least 1; in records with --rate-unit lines]. Each read or write carries at most 1/20 s of the rate, whatever the burst' -r -f
complete -c bpipe -l stats-format -d 'Format of the summary and of every stats record' -r -f -a "human\t'One line for people'
json\t'One JSON object per line, for scripts'"
complete -c bpipe -s i -l interval -d 'Print a stats record every DURATION (e.g. 1s, 250ms)' -r -f
complete -c bpipe -s s -l size -d 'Expected total size, for percent and ETA in --progress' -r -f
complete -c bpipe -l stats-file -d 'Also write every stats record to PATH (created or truncated) as JSON Lines' -r -F
complete -c bpipe -l spool -d 'When the queue is full, append what is read to a spool file in DIR instead of applying --on-full, and replay it in order as the writer frees room. The file has no name (nothing is left behind, even after kill -9), its space is reserved ahead, and memory stays bounded as without it. Needs --spool-max' -r -f -a "(__fish_complete_directories)"
complete -c bpipe -l spool-max -d 'The most the spool holds on disk; when it is full, --on-full applies to what is read (drop-oldest evicts the spool\'s oldest whole records)' -r -f
complete -c bpipe -l start-at -d 'Hold the writer until the buffer (queue and spool) holds LEVEL, a size or a percentage of its capacity (-m plus --spool-max), or is full, or the input ends; eof waits for the end of the input (store and forward)' -r -f
complete -c bpipe -l start-after -d 'Start the writer after DURATION even if the buffer is below --start-at' -r -f
complete -c bpipe -l resume-at -d 'Once the buffer has filled, the reader waits (under --on-full block) until it has drained to LEVEL, a size or a percentage of its capacity, before it reads again' -r -f
complete -c bpipe -l control -d 'Answer control requests on the Unix socket PATH instead of the default, $XDG_RUNTIME_DIR/bpipe/PID.sock (else /tmp/bpipe-UID/PID.sock); unlike the default, a PATH that cannot be used stops bpipe before any byte moves' -r -F
complete -c bpipe -l metrics-file -d 'Write the stats in the Prometheus text format to PATH (replaced whole, by rename) every interval (-i, default 10s) and at exit' -r -F
complete -c bpipe -l metrics-listen -d 'Serve the same metrics over HTTP (GET /metrics) on [ADDR:]PORT; 127.0.0.1 unless ADDR is given' -r -f
complete -c bpipe -l metrics-label -d 'A constant label on every metric, e.g. job=backup (repeatable)' -r -f
complete -c bpipe -l query -d 'Print the stats of the running bpipe PID (or on the socket PATH) and exit' -r
complete -c bpipe -l remote -d 'Change the running bpipe PID (or on the socket PATH): the -L, --read-rate, --on-full, --pause and --resume given here; exit 0 only if every change was accepted' -r
complete -c bpipe -l pause -d 'With --remote: pause reading (in), writing (out), or both' -r -f -a "in\t'Reading: the producer is held back once the queue is full'
out\t'Writing: the queue fills'
both\t'Reading and writing'"
complete -c bpipe -l resume -d 'With --remote: resume reading (in), writing (out), or both' -r -f -a "in\t'Reading: the producer is held back once the queue is full'
out\t'Writing: the queue fills'
both\t'Reading and writing'"
complete -c bpipe -l listen -d 'Read from a TCP connection accepted on [ADDR:]PORT (tcp-listen:[ADDR:]PORT as a FILE)' -r -f
complete -c bpipe -l connect -d 'Write to a TCP connection to HOST:PORT (tcp:HOST:PORT as an output)' -r -f
complete -c bpipe -l max-conns -d 'Accept N connections on the listening input and merge them (with --merge), then stop listening' -r -f
complete -c bpipe -l accept-timeout -d 'Give up waiting for a connection after DURATION (exit 1)' -r -f
complete -c bpipe -l connect-timeout -d 'Retry a refused or unreachable connection for at most DURATION, with growing delays (100ms doubling to 2s, with jitter)' -r -f
complete -c bpipe -l retries -d 'Make at most N more attempts after the first (default: as many as --connect-timeout allows)' -r -f
complete -c bpipe -l peer-timeout -d 'A peer that stops answering (keep-alive probes, unacknowledged data) is an error after DURATION; unlike --stall-timeout, a slow but live peer is not' -r -f
complete -c bpipe -l tcp-buffer -d 'Socket send and receive buffer size (SO_SNDBUF, SO_RCVBUF); default: the kernel\'s' -r -f
complete -c bpipe -l allow -d 'Accept connections only from ADDR or the network ADDR/PREFIX (repeatable); others are closed at once and the listener keeps waiting' -r -f
complete -c bpipe -l tls-cert -d 'The certificate (PEM) a listener presents, or a connecting side\'s client certificate' -r -F
complete -c bpipe -l tls-key -d 'The private key (PEM) of --tls-cert' -r -F
complete -c bpipe -l tls-ca -d 'Trust listeners whose certificate this CA (PEM) signed, for the host named' -r -F
complete -c bpipe -l tls-pin -d 'Trust the listener whose certificate has this SHA-256 (hex, of the DER), e.g. a self-signed one' -r -f
complete -c bpipe -l tls-client-ca -d 'Require client certificates signed by this CA (PEM) on listening endpoints' -r -F
complete -c bpipe -l append -d 'Append to the --output files instead of truncating them'
complete -c bpipe -l merge -d 'Read all FILEs at once, one reader each, and merge them: whole chunks, or whole records in line mode, taking turns when the queue is full; each input gets an equal share of -n'
complete -c bpipe -l no-splice -d 'Always use read/write, never the zero-copy splice(2) path'
complete -c bpipe -s l -l lines -d 'Line mode: chunks end at newlines, so drops keep or lose whole records'
complete -c bpipe -s 0 -l null -d 'Records end at NUL instead of newline (implies --lines)'
complete -c bpipe -s d -l drop -d 'Same as --on-full drop'
complete -c bpipe -s q -l quiet -d 'No stats on standard error: no summary, no interval records (errors and SIGUSR1 snapshots still print; --stats-file still gets every record)'
complete -c bpipe -s p -l progress -d 'A live status line, redrawn in place, when standard error is a terminal; with several outputs it shows the slowest one\'s lag'
complete -c bpipe -l no-control -d 'No control socket: --query, --remote and --top will not see this bpipe'
complete -c bpipe -l top -d 'A live table, refreshed every second, of every bpipe of this user on this machine'
complete -c bpipe -l once -d 'With --top: print one table (JSON Lines with --stats-format json) and exit'
complete -c bpipe -l raw -d 'Plain bytes on TCP, for nc, socat or mbuffer on the other side: no hello, no trailer, so a sender that dies looks like a clean end'
complete -c bpipe -l checksum -d 'Digest every byte (BLAKE3); between two bpipes (give it to both) the receiver verifies it (exit 6 on a mismatch). Uses the copy path'
complete -c bpipe -s h -l help -d 'Print help (see more with \'--help\')'
complete -c bpipe -s V -l version -d 'Print version'
