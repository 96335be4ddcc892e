//! Progress of a rotation on stderr. On a terminal ([`Ui::live`]): one line per key with its
//! current step and a summary bar, redrawn in place with `indicatif`. Otherwise plain lines
//! (`-v`, or a terminal under `NO_COLOR`/`TERM=dumb`), or nothing (`--quiet`, or stderr is
//! not a terminal and no `-v`).
//!
//! Must not: show a secret (only masked key ids and step names reach it).

use super::ui::Ui;
use crate::rotation::Step;
use crate::rotation::progress::{Counts, Stage, Tracker};
use crate::secret::mask_key_id;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::cell::RefCell;
use std::collections::HashMap;

/// At most this many key lines at once; the summary counts the others.
const MAX_LINES: usize = 20;

/// What a key's line says for `stage`.
pub fn stage_text(stage: Stage) -> String {
    match stage {
        Stage::Journal => "journal".into(),
        Stage::MakeRoom => "making room".into(),
        Stage::Create => "create".into(),
        Stage::Verify { ok, of } => format!("verify {ok}/{of}"),
        Stage::WaitForIam => "waiting for IAM".into(),
        Stage::Persist => "files".into(),
        Stage::Gates => "hooks".into(),
        Stage::Retire => "retire".into(),
        Stage::Done => "done".into(),
    }
}

fn summary_text(c: Counts) -> String {
    let mut parts = Vec::new();
    if c.verifying > 0 {
        parts.push(format!("{} verifying", c.verifying));
    }
    if c.waiting > 0 {
        parts.push(format!("{} waiting for IAM", c.waiting));
    }
    parts.join(", ")
}

struct Live {
    multi: MultiProgress,
    summary: ProgressBar,
    lines: RefCell<HashMap<String, ProgressBar>>,
    line_style: ProgressStyle,
}

/// The progress display of one run.
pub struct Progress<'a> {
    ui: &'a Ui,
    tracker: RefCell<Tracker>,
    live: Option<Live>,
}

impl<'a> Progress<'a> {
    /// `verify_successes`: the calls in a row a new key needs (for `verify 2/3`).
    pub fn new(ui: &'a Ui, verify_successes: u32) -> Progress<'a> {
        Progress::with_target(
            ui,
            verify_successes,
            ui.live().then(ProgressDrawTarget::stderr),
        )
    }

    fn with_target(
        ui: &'a Ui,
        verify_successes: u32,
        target: Option<ProgressDrawTarget>,
    ) -> Progress<'a> {
        let live = target.map(|target| {
            let multi = MultiProgress::with_draw_target(target);
            let summary = multi.add(ProgressBar::new(0));
            summary.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} keys rotated  {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            Live {
                multi,
                summary,
                lines: RefCell::new(HashMap::new()),
                line_style: ProgressStyle::with_template("  {prefix}  {msg}")
                    .expect("a valid template"),
            }
        });
        Progress {
            ui,
            tracker: RefCell::new(Tracker::new(verify_successes)),
            live,
        }
    }

    /// How many keys will be rotated (the summary bar's length).
    pub fn expect(&self, keys: usize) {
        self.tracker.borrow_mut().expect(keys);
        if let Some(live) = &self.live {
            live.summary.set_length(keys as u64);
        }
    }

    /// The engine's report: `key` is now at `step`.
    pub fn step(&self, key: &str, step: Step) {
        let stage = self.tracker.borrow_mut().step(key, step);
        let Some(live) = &self.live else {
            if step != Step::Done {
                let text = match stage {
                    Stage::Verify { ok, of } if step == Step::Verified => {
                        format!("{}: the new key answered ({ok}/{of})", mask_key_id(key))
                    }
                    _ => format!("{}: {step}", mask_key_id(key)),
                };
                self.ui.progress(&text);
            }
            return;
        };
        let counts = self.tracker.borrow().counts();
        let mut lines = live.lines.borrow_mut();
        if stage == Stage::Done {
            if let Some(line) = lines.remove(key) {
                line.finish_and_clear();
                live.multi.remove(&line);
            }
        } else if let Some(line) = lines.get(key) {
            line.set_message(stage_text(stage));
        } else if lines.len() < MAX_LINES {
            let line = live
                .multi
                .insert_before(&live.summary, ProgressBar::new_spinner());
            line.set_style(live.line_style.clone());
            line.set_prefix(mask_key_id(key));
            line.set_message(stage_text(stage));
            lines.insert(key.to_string(), line);
        }
        live.summary.set_length(counts.total as u64);
        live.summary.set_position(counts.done as u64);
        live.summary.set_message(summary_text(counts));
    }

    /// Take the display off the terminal (before the results are printed).
    pub fn finish(&self) {
        if let Some(live) = &self.live {
            for (_, line) in live.lines.borrow_mut().drain() {
                line.finish_and_clear();
            }
            live.summary.finish_and_clear();
            let _ = live.multi.clear();
        }
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_step_and_the_verification_count() {
        assert_eq!(stage_text(Stage::Verify { ok: 2, of: 3 }), "verify 2/3");
        assert_eq!(stage_text(Stage::Persist), "files");
        assert_eq!(
            summary_text(Counts {
                total: 10,
                started: 10,
                done: 2,
                verifying: 5,
                waiting: 3
            }),
            "5 verifying, 3 waiting for IAM"
        );
    }
}
