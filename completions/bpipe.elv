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
            cand -o 'Write to PATH (created or truncated) instead of standard output; - is standard output. Give it several times to send the stream to each: every output has its own lane of -n chunks (and -m bytes), sharing the chunks, not copying them, so with N outputs at most (N+1) x -n chunks exist. SPEC is PATH[,slow=POLICY][,rate=RATE], that output''s own --slow-output and --rate-limit; a comma in PATH is written twice'
            cand --output 'Write to PATH (created or truncated) instead of standard output; - is standard output. Give it several times to send the stream to each: every output has its own lane of -n chunks (and -m bytes), sharing the chunks, not copying them, so with N outputs at most (N+1) x -n chunks exist. SPEC is PATH[,slow=POLICY][,rate=RATE], that output''s own --slow-output and --rate-limit; a comma in PATH is written twice'
            cand -b 'Chunk size: the most one read moves [1 byte to 1GiB]'
            cand --chunk-size 'Chunk size: the most one read moves [1 byte to 1GiB]'
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
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
    ]
    $completions[$command]
}
