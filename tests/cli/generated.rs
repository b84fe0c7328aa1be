//! `man/bpipe.1` and `completions/*` are generated from the clap definition (`bpipe::cli::Cli`),
//! the same one `--help` prints, so they cannot drift from it. These tests regenerate them in
//! memory and fail when a committed file differs; `BPIPE_REGENERATE=1` writes them instead:
//!
//!     BPIPE_REGENERATE=1 cargo test --test cli generated
//!
//! The man page's hand-written roff (the backpressure model, sizes, stats, signals, examples)
//! lives in the template `doc/bpipe.1.in`, whose notes say which placeholders it has. The
//! generator fills them with clap_mangen's NAME, SYNOPSIS, DESCRIPTION and OPTIONS, the version,
//! and an EXIT STATUS table built from `bpipe::cli::EXIT_STATUS`, the table `--help` ends with.
//!
//! The other tests here check that the files load: the man page through groff without warnings,
//! each completion script in its shell. Bash is always there; groff, zsh, fish and elvish are
//! skipped with a note when missing, except under CI, where a missing one fails
//! (`util::require_tool`); PowerShell, which Debian does not package, is loaded where installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bpipe::cli::{Cli, EXIT_STATUS};
use clap::CommandFactory;
use clap_complete::{Generator, Shell};

use crate::util;

pub(crate) const REFRESH: &str = "BPIPE_REGENERATE=1 cargo test --test cli generated";

/// The first line of every generated file but the zsh one, whose first line must be `#compdef`.
const GENERATED_NOTE: &str = "Generated from bpipe::cli::Cli by tests/cli/generated.rs: do not edit. \
     Refresh with: BPIPE_REGENERATE=1 cargo test --test cli generated";

const SHELLS: [Shell; 5] = [
    Shell::Bash,
    Shell::Zsh,
    Shell::Fish,
    Shell::PowerShell,
    Shell::Elvish,
];

/// The man page's hand-written roff, with placeholders for what is generated.
const TEMPLATE: &str = "doc/bpipe.1.in";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// Generation.

fn render(what: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    what(&mut out).expect("render to memory");
    String::from_utf8(out).expect("clap_mangen writes UTF-8")
}

/// Escapes text for a roff text line: backslashes and dashes, and a leading dot or quote.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', r"\e").replace('-', r"\-");
    if escaped.starts_with(['.', '\'']) {
        format!(r"\&{escaped}")
    } else {
        escaped
    }
}

/// `bpipe::cli::EXIT_STATUS` as the body of the man page's EXIT STATUS section: its indented
/// lines are `STATUS  MEANING`.
fn exit_status_table() -> String {
    let rows: Vec<(&str, &str)> = EXIT_STATUS
        .lines()
        .skip_while(|line| !line.starts_with(' '))
        .take_while(|line| line.starts_with(' '))
        .map(|line| {
            line.trim()
                .split_once(char::is_whitespace)
                .map(|(status, meaning)| (status, meaning.trim()))
                .unwrap_or_else(|| panic!("EXIT_STATUS line without a meaning: {line:?}"))
        })
        .collect();
    assert!(
        rows.len() >= 7,
        "EXIT_STATUS no longer looks like an indented table: {EXIT_STATUS}"
    );
    rows.into_iter()
        .map(|(status, meaning)| {
            format!(".TP 8\n.B {}\n{}\n", roff_text(status), roff_text(meaning))
        })
        .collect()
}

/// Replaces each placeholder (`@NAME@`, an upper-case name between at signs) in `template` with
/// its value, a trailing newline left out: a placeholder stands on a line of its own or inside
/// one. An unknown placeholder, or a value not used exactly once, is a mistake in the template.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut page = String::with_capacity(template.len() * 2);
    let mut used = vec![0; values.len()];
    let mut rest = template;
    while let Some(at) = rest.find('@') {
        page.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .unwrap_or(after.len());
        if len == 0 || !after[len..].starts_with('@') {
            page.push('@');
            rest = after;
            continue;
        }
        let name = &after[..len];
        let index = values
            .iter()
            .position(|(known, _)| *known == name)
            .unwrap_or_else(|| panic!("{TEMPLATE}: unknown placeholder @{name}@"));
        used[index] += 1;
        let value = values[index].1;
        page.push_str(value.strip_suffix('\n').unwrap_or(value));
        rest = &after[len + 1..];
    }
    page.push_str(rest);
    for ((name, _), count) in values.iter().zip(used) {
        assert_eq!(
            count, 1,
            "{TEMPLATE}: @{name}@ is used {count} times, not once"
        );
    }
    page
}

fn man_page() -> String {
    let template_path = root().join(TEMPLATE);
    let template = std::fs::read_to_string(&template_path)
        .unwrap_or_else(|e| panic!("{}: {e}", template_path.display()));
    // Notes on the template are not part of the page.
    let template: String = template
        .split_inclusive('\n')
        .filter(|line| !line.starts_with(".\\\"#"))
        .collect();

    let man = clap_mangen::Man::new(Cli::command());
    // Each render starts with roff's apostrophe preamble: keep the title's, strip the others'.
    let rendered = render(|w| man.render_title(w));
    let preamble = rendered[..rendered.find(".TH ").expect("a .TH line")].to_string();
    let version = Cli::command().get_version().unwrap_or_default().to_string();
    // The template has the .SH lines, so that it reads as the page does.
    let body = |text: String, heading: &str| {
        let text = text.strip_prefix(preamble.as_str()).unwrap_or(&text);
        text.strip_prefix(&format!(".SH {heading}\n"))
            .unwrap_or_else(|| panic!("clap_mangen's {heading} section starts otherwise: {text}"))
            .to_string()
    };

    // clap_mangen gives each help heading a section of its own; here they are subsections of
    // OPTIONS, in the order --help shows them.
    let mut options = body(render(|w| man.render_options_section(w)), "OPTIONS");
    let command = Cli::command();
    let mut headings: Vec<&str> = command
        .get_arguments()
        .filter_map(|arg| arg.get_help_heading())
        .collect();
    headings.dedup();
    for heading in headings {
        // roff quotes a heading with spaces.
        let (generated, sub) = if heading.contains(' ') {
            (
                format!(".SH \"{}\"\n", heading.to_uppercase()),
                format!(".SS \"{heading}\"\n"),
            )
        } else {
            (
                format!(".SH {}\n", heading.to_uppercase()),
                format!(".SS {heading}\n"),
            )
        };
        assert!(
            options.contains(&generated),
            "no {generated:?} in {options}"
        );
        options = options.replacen(&generated, &sub, 1);
    }

    let page = fill(
        &template,
        &[
            ("VERSION", &version),
            (
                "NAME",
                &body(render(|w| man.render_name_section(w)), "NAME"),
            ),
            (
                "SYNOPSIS",
                &body(render(|w| man.render_synopsis_section(w)), "SYNOPSIS"),
            ),
            (
                "DESCRIPTION",
                &body(render(|w| man.render_description_section(w)), "DESCRIPTION"),
            ),
            ("OPTIONS", &options),
            ("EXIT_STATUS", &exit_status_table()),
        ],
    );
    format!(".\\\" {GENERATED_NOTE}\n{preamble}{page}")
}

fn completion(shell: Shell) -> String {
    let mut command = Cli::command();
    let script = render(|w| {
        clap_complete::generate(shell, &mut command, "bpipe", w);
        Ok(())
    });
    let note = format!("# {GENERATED_NOTE}\n");
    match script.split_once('\n') {
        // zsh's autoloader needs `#compdef` on the first line.
        Some((first, rest)) if first.starts_with("#compdef") => format!("{first}\n{note}{rest}"),
        _ => format!("{note}{script}"),
    }
}

/// Every generated file: its path from the repository root and its content.
fn generated_files() -> Vec<(String, String)> {
    let mut files = vec![("man/bpipe.1".to_string(), man_page())];
    for shell in SHELLS {
        files.push((
            format!("completions/{}", shell.file_name("bpipe")),
            completion(shell),
        ));
    }
    files
}

/// Checks the committed files against the generator once per test run, or with
/// `BPIPE_REGENERATE=1` writes them. The other tests here call it first, so that they never read
/// a file while it is being rewritten.
fn check_or_regenerate() -> &'static Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let regenerate = std::env::var_os("BPIPE_REGENERATE").is_some_and(|v| v == "1");
        let mut stale = Vec::new();
        for (path, content) in generated_files() {
            let full = root().join(&path);
            if regenerate {
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                let current = std::fs::read_to_string(&full).ok();
                if current.as_deref() != Some(content.as_str()) {
                    std::fs::write(&full, &content)
                        .unwrap_or_else(|e| panic!("cannot write {}: {e}", full.display()));
                    eprintln!("regenerated {path}");
                }
                continue;
            }
            match std::fs::read_to_string(&full) {
                Ok(committed) if committed == content => {}
                Ok(committed) => stale.push(format!(
                    "{path} differs from what the generator produces (first difference at line {})",
                    first_difference(&committed, &content)
                )),
                Err(e) => stale.push(format!("{path} cannot be read: {e}")),
            }
        }
        if stale.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "generated files are out of date:\n  {}\nRefresh them with:\n  {REFRESH}\n\
                 (the sources are bpipe::cli::Cli in src/cli/mod.rs and the man page template \
                 {TEMPLATE})",
                stale.join("\n  ")
            ))
        }
    })
}

fn first_difference(a: &str, b: &str) -> usize {
    a.lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()))
        + 1
}

#[test]
fn committed_files_match_the_generator() {
    if let Err(message) = check_or_regenerate() {
        panic!("{message}");
    }
}

// ---------------------------------------------------------------------------------------------
// The generated files work.

fn committed(path: &str) -> PathBuf {
    let _ = check_or_regenerate();
    root().join(path)
}

/// Runs `program args...` in the repository root, bounded in time.
fn run_in_root(program: &str, args: &[&str]) -> util::Output {
    let child = Command::new(program)
        .args(args)
        .current_dir(root())
        .env("HOME", std::env::temp_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    util::finish(child, util::DEADLINE)
}

fn stdout(out: &util::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn man_page_has_no_roff_warnings() {
    let page = committed("man/bpipe.1");
    if !util::require_tool("groff", "groff-base") {
        return;
    }
    let out = run_in_root("groff", &["-man", "-ww", "-z", page.to_str().unwrap()]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "groff -man -ww -z man/bpipe.1: status {}, warnings:\n{}",
        out.code(),
        out.stderr
    );
}

#[test]
fn man_page_renders_every_section() {
    let page = committed("man/bpipe.1");
    if !util::require_tool("groff", "groff-base") {
        return;
    }
    let out = run_in_root(
        "groff",
        &[
            "-man",
            "-Tutf8",
            "-rLL=80n",
            "-P-cbou",
            page.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "groff failed: {}", out.stderr);
    let text = stdout(&out);
    for heading in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "SIZES AND RATES",
        "STATS",
        "SIGNALS",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            text.lines().any(|line| line == heading),
            "no {heading} section in the rendered page:\n{text}"
        );
    }
    for sub in ["Input/Output", "Buffering", "Overload", "Rate", "Reporting"] {
        assert!(
            text.lines().any(|line| line.trim() == sub),
            "no {sub} subsection under OPTIONS:\n{text}"
        );
    }
    for typed in [
        "--on-full drop-oldest",
        "--stall-timeout",
        "bpipe: input rejected",
    ] {
        assert!(
            text.contains(typed),
            "{typed:?} does not render as typed:\n{text}"
        );
    }
}

/// Every key bpipe prints in its JSON records (exit and interval) is described under STATS.
#[test]
fn man_page_describes_every_stats_key() {
    let page = std::fs::read_to_string(committed("man/bpipe.1")).unwrap();
    let stats = &page[page.find(".SH STATS").unwrap()..page.find(".SH SIGNALS").unwrap()];
    // The tag of each .TP paragraph, as words: `.BR chunks_in ", " chunks_out` names two keys.
    let described: Vec<&str> = stats
        .lines()
        .zip(stats.lines().skip(1))
        .filter(|(line, _)| line.starts_with(".TP"))
        .flat_map(|(_, tag)| tag.split(|c: char| !(c.is_alphanumeric() || c == '_')))
        .collect();
    for key in stats_keys() {
        assert!(
            described.contains(&key.as_str()),
            "the STATS section of the man page does not describe the key {key}"
        );
    }
}

/// The keys of the records a real run prints: an interval record and the exit record.
pub(crate) fn stats_keys() -> Vec<String> {
    let out = util::sh(
        r#"(printf 'a\n'; sleep 0.3) | "$BPIPE" -i 100ms --stats-format json 2>&1 >/dev/null"#,
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let mut keys: Vec<String> = Vec::new();
    let text = stdout(&out);
    for line in text.lines().filter(|l| l.starts_with('{')) {
        for key in util::Json::parse(line).keys() {
            if !keys.iter().any(|k| k == key) {
                keys.push(key.to_string());
            }
        }
    }
    for expected in ["event", "bytes_in", "rate_in_Bps", "exit_status"] {
        assert!(
            keys.iter().any(|k| k == expected),
            "{expected} missing: {text}"
        );
    }
    keys
}

/// Loads the bash script and asks it what to offer after `bpipe WORDS... CURRENT`, as bash would
/// when TAB is pressed (`complete -p bpipe` first proves it registered itself).
fn bash_offers(words: &[&str]) -> (String, Vec<String>) {
    let script = committed("completions/bpipe.bash");
    let out = run_in_root(
        "bash",
        &[
            "-c",
            r#"source "$0" && complete -p bpipe || exit 1
               compopt() { :; }  # only works inside a completion bash itself started
               COMP_WORDS=(bpipe "$@"); COMP_CWORD=$#; COMP_LINE="${COMP_WORDS[*]}"
               COMP_POINT=${#COMP_LINE}
               _bpipe bpipe "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
               printf '%s\n' "${COMPREPLY[@]}""#,
            script.to_str().unwrap(),
        ]
        .into_iter()
        .chain(words.iter().copied())
        .collect::<Vec<_>>(),
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "sourcing completions/bpipe.bash failed ({}): {}",
        out.code(),
        out.stderr
    );
    let text = stdout(&out);
    let mut lines = text.lines();
    let registration = lines.next().unwrap_or_default().to_string();
    (registration, lines.map(str::to_string).collect())
}

#[test]
fn bash_completion_loads() {
    let (registration, policies) = bash_offers(&["--on-full", ""]);
    assert!(
        registration.starts_with("complete ") && registration.ends_with(" bpipe"),
        "{registration}"
    );
    assert_eq!(policies, ["block", "drop", "drop-oldest", "fail"]);
    let (_, mut options) = bash_offers(&["--stats-f"]);
    options.sort();
    assert_eq!(options, ["--stats-file", "--stats-format"]);
    // PATH values complete file names.
    let (_, files) = bash_offers(&["-o", "Cargo.t"]);
    assert_eq!(files, ["Cargo.toml"]);
    let (_, files) = bash_offers(&["--stats-file", "Cargo.t"]);
    assert_eq!(files, ["Cargo.toml"]);
}

#[test]
fn zsh_completion_loads() {
    let _ = committed("completions/_bpipe");
    if !util::require_tool("zsh", "zsh") {
        return;
    }
    let out = run_in_root(
        "zsh",
        &[
            "-f",
            "-c",
            "fpath=(completions $fpath); autoload -U compinit; compinit -u -D; \
             source completions/_bpipe && print -r -- ${_comps[bpipe]}",
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "loading completions/_bpipe in zsh failed ({}): {}",
        out.code(),
        out.stderr
    );
    assert_eq!(stdout(&out).trim(), "_bpipe", "{}", out.stderr);
}

#[test]
fn fish_completion_loads() {
    let _ = committed("completions/bpipe.fish");
    if !util::require_tool("fish", "fish") {
        return;
    }
    let out = run_in_root(
        "fish",
        &[
            "--no-config",
            "-c",
            "source completions/bpipe.fish; and complete -C'bpipe --on-full '",
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "loading completions/bpipe.fish in fish failed ({}): {}",
        out.code(),
        out.stderr
    );
    let offered: Vec<String> = stdout(&out)
        .lines()
        .map(|line| line.split('\t').next().unwrap().to_string())
        .collect();
    assert_eq!(offered, ["block", "drop", "drop-oldest", "fail"]);
}

/// elvish only has its `edit:` module in an interactive session on a terminal; a stand-in with
/// the two names the script uses lets it load and run here.
#[test]
fn elvish_completion_loads() {
    let _ = committed("completions/bpipe.elv");
    if !util::require_tool("elvish", "elvish") {
        return;
    }
    let out = run_in_root(
        "elvish",
        &[
            "-norc",
            "-c",
            "var edit: = (ns [&completion:=(ns [&arg-completer=[&]]) \
                              &complex-candidate~={|text &display=''| put $text}])
             eval (slurp < completions/bpipe.elv)
             $edit:completion:arg-completer[bpipe] bpipe '' | to-lines",
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "loading completions/bpipe.elv in elvish failed ({}): {}",
        out.code(),
        out.stderr
    );
    let text = stdout(&out);
    for option in ["--on-full", "--stats-file", "-L"] {
        assert!(
            text.lines().any(|l| l == option),
            "{option} not offered:\n{text}"
        );
    }
}

/// PowerShell is not in Debian's packages: where it is missing, the script is checked for what
/// it must register; where it is installed, it must also load.
#[test]
fn powershell_completion_loads_where_installed() {
    let script = committed("completions/_bpipe.ps1");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(
        text.contains("Register-ArgumentCompleter -Native -CommandName 'bpipe'"),
        "completions/_bpipe.ps1 registers no completer for bpipe"
    );
    for flag in ["--on-full", "--stats-file", "--rate-limit", "--no-splice"] {
        assert!(
            text.contains(&format!("'{flag}'")),
            "completions/_bpipe.ps1 lacks {flag}"
        );
    }
    if !util::installed("pwsh") {
        eprintln!("note: pwsh is not installed; completions/_bpipe.ps1 checked but not loaded");
        return;
    }
    let out = run_in_root(
        "pwsh",
        &[
            "-NoProfile",
            "-NonInteractive",
            "-File",
            script.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "loading completions/_bpipe.ps1 in pwsh failed ({}): {}",
        out.code(),
        out.stderr
    );
}
