//! Dialog boxes and the help overlay, drawn over the current screen.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use tui_input::Input;

use super::Theme;
use crate::app::state::{AppState, Dialog, FAULT_CHOICES, input_problem, redo_blocker};
use crate::present::{self, escape as shown};

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width.saturating_sub(2)).max(10);
    let h = height.min(area.height.saturating_sub(2)).max(3);
    Rect {
        x: area.x + (area.width.saturating_sub(w)) / 2,
        y: area.y + (area.height.saturating_sub(h)) / 2,
        width: w,
        height: h,
    }
}

pub fn dialog(state: &AppState, d: &Dialog, theme: Theme, frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> = Vec::new();
    let mut input: Option<&Input> = None;
    let title: String;
    let hint: &str;
    // The split the move sets on Cloud Run, and the dry run's answer.
    let traffic = state
        .traffic_plan
        .as_ref()
        .filter(|p| Some(p.id.as_str()) == d.rollout_id())
        .map(|p| {
            let style = match &p.answer {
                Some(Err(_)) => theme.bad(),
                _ => theme.accent(),
            };
            Line::styled(shown(&p.line()).into_owned(), style)
        });
    match d {
        Dialog::Quit { driving } => {
            title = "Quit while driving?".into();
            lines.push(Line::raw(format!(
                "This cockpit runs auto-progression for {}.",
                shown(&driving.join(", "))
            )));
            lines.push(Line::raw(
                "Quitting stops it and releases the lease, so another cockpit can take over.",
            ));
            hint = "y: quit   n/Esc: stay";
        }
        Dialog::Confirm { title: t, body, .. } => {
            title = t.clone();
            lines.extend(body.iter().map(|b| Line::raw(shown(b).into_owned())));
            lines.extend(traffic);
            hint = "y/Enter: yes   n/Esc: no";
        }
        Dialog::TypedConfirm {
            title: t,
            body,
            input: i,
            ..
        } => {
            title = t.clone();
            lines.extend(body.iter().map(|b| Line::raw(shown(b).into_owned())));
            lines.extend(traffic);
            input = Some(i);
            hint = "Enter: confirm   Esc: cancel";
        }
        Dialog::Override {
            title: t,
            body,
            risks,
            input: i,
            ..
        } => {
            title = t.clone();
            lines.extend(body.iter().map(|b| Line::raw(shown(b).into_owned())));
            lines.extend(traffic);
            lines.push(Line::styled("This overrides:", theme.bad()));
            lines.extend(
                risks
                    .iter()
                    .map(|r| Line::styled(format!("  ✖ {}", shown(r)), theme.bad())),
            );
            lines.push(Line::raw(
                "Reason (recorded in the audit log with the gate report):",
            ));
            input = Some(i);
            hint = "Esc: stay (safe)   Enter: override with this reason";
        }
        Dialog::Rollback { id, input: i } => {
            title = format!("ROLL BACK {id}");
            lines.push(Line::raw("Everyone goes back to stable at once."));
            lines.extend(traffic);
            lines.push(Line::raw(
                "Reason (recorded in the document and the audit log):",
            ));
            input = Some(i);
            hint = "Enter: roll back now   Esc: cancel";
        }
        Dialog::SetPercent { id, input: i } => {
            let current = state
                .entry(id)
                .and_then(|e| e.rollout.as_ref().ok())
                .map(|r| r.percentage.to_string());
            title = format!("Set percentage of {id}");
            lines.push(Line::raw(format!(
                "Now {}. New percentage (0-100, two decimals at most):",
                current.unwrap_or_default()
            )));
            input = Some(i);
            hint = "Enter: set   Esc: cancel";
        }
        Dialog::AddUser { id, list, input: i } => {
            title = format!("Add to {} of {id}", list.label());
            lines.push(Line::raw(
                "Emails or user ids, separated by commas, spaces or newlines:",
            ));
            input = Some(i);
            hint = "Enter: add   Esc: cancel";
        }
        Dialog::AutoConfirm {
            id,
            next,
            evidence,
            since,
        } => {
            title = match &next.because {
                None => format!("AUTO-PROGRESSION: {id} is ready for the next stage"),
                Some(_) => format!("AUTO-PROGRESSION: {id} asks you"),
            };
            lines.push(Line::styled(
                format!(
                    "Advance to {}?",
                    present::stage_position(next.index, None, &next.name, next.percent)
                ),
                theme.accent(),
            ));
            if let Some(why) = &next.because {
                lines.push(Line::raw(shown(why.text()).into_owned()));
            }
            lines.push(Line::raw(format!(
                "waiting for you {}",
                present::since(state.now - *since)
            )));
            lines.extend(traffic);
            lines.push(Line::raw("Evidence:"));
            lines.extend(
                evidence
                    .iter()
                    .map(|e| Line::raw(format!("  {}", shown(e)))),
            );
            hint = "y: advance   n/Esc: keep waiting   r: roll back";
        }
        Dialog::Fault { id } => {
            title = format!("Simulate a fault in {id}'s canary");
            let active = state.faults.get(id).map(|f| {
                f.iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            lines.push(Line::raw(format!(
                "Now: {}",
                active.unwrap_or_else(|| "no fault".into())
            )));
            for (key, fault) in FAULT_CHOICES {
                lines.push(Line::raw(format!("{key}  {fault}")));
            }
            lines.push(Line::raw("0  clear every fault"));
            hint = "1/2/3/0: choose   Esc: cancel";
        }
        Dialog::Conflict {
            id,
            action,
            changed,
            by,
        } => {
            title = format!("{id} changed under you");
            lines.push(Line::raw(format!(
                "Your {} was not written: someone else changed the rollout first.",
                present::action_label(action)
            )));
            lines.push(Line::raw(present::change_author(by.as_ref(), state.now)));
            let stages = state
                .entry(id)
                .and_then(|e| e.rollout.as_ref().ok())
                .and_then(|r| r.plan.as_ref())
                .map(|p| p.stages.len());
            for c in changed.iter().take(8) {
                let change = present::field_change_in(&c.field, &c.before, &c.after, stages);
                lines.push(Line::raw(format!("  {change}")));
            }
            lines.push(Line::raw("The screen now shows the current document."));
            hint = match redo_blocker(state, id, action) {
                None => "r: redo on the current document   Esc: dismiss",
                Some(why) => {
                    lines.push(Line::styled(
                        format!("No redo: {}.", shown(&why)),
                        theme.bad(),
                    ));
                    "Esc: dismiss"
                }
            };
        }
        Dialog::Pause { id, input: i } => {
            title = format!("Pause {id}");
            lines.push(Line::raw(
                "The canary keeps its share; stages and auto-progression stop.",
            ));
            lines.push(Line::raw("Reason (optional; Enter without one pauses):"));
            input = Some(i);
            hint = "Enter: pause   Esc: cancel";
        }
        Dialog::Which { id, input: i } => {
            title = format!("Which side: {id}");
            lines.push(Line::raw("User key (email address or user id):"));
            input = Some(i);
            hint = "Enter: look up   Esc: cancel";
        }
        Dialog::Freeze { input: i } => {
            title = "FREEZE every rollout".into();
            lines.push(Line::raw(
                "Nothing advances or widens, by anyone (cockpits, drivers, commands),",
            ));
            lines.push(Line::raw(
                "until someone unfreezes. Rollback and pause still work.",
            ));
            lines.push(Line::raw("Reason (shown on every screen):"));
            input = Some(i);
            hint = "Enter: freeze   Esc: cancel";
        }
        Dialog::Unfreeze { freeze } => {
            title = "Unfreeze?".into();
            lines.push(Line::raw(
                crate::domain::freeze::Frozen::Flag(freeze.clone()).describe(),
            ));
            lines.push(Line::raw(
                "Unfreezing lets every rollout advance again (drivers included).",
            ));
            hint = "y: unfreeze   n/Esc: stay frozen";
        }
        Dialog::SyncTraffic { id, view } => {
            title = format!("Re-apply {id}'s split on Cloud Run?");
            match view.serving() {
                Ok(serving) => lines.push(Line::raw(format!("Serving now: {}", shown(&serving)))),
                Err(e) => lines.push(Line::styled(
                    format!("The split cannot be read: {}", shown(&e)),
                    theme.bad(),
                )),
            }
            if let Some(drift) = view.drift_message() {
                lines.push(Line::styled(shown(&drift).into_owned(), theme.bad()));
            }
            lines.push(Line::raw(
                "Sets the split the rollout document describes (a wider canary is refused while frozen).",
            ));
            hint = "y: re-apply   n/Esc: leave it";
        }
        Dialog::Info { title: t, body } => {
            title = t.clone();
            lines.extend(body.iter().map(|b| Line::raw(shown(b).into_owned())));
            hint = "Esc/Enter: close";
        }
    }
    if state.dialog_refreshed {
        lines.insert(
            0,
            Line::styled("⚠ the rollout changed while this was open", theme.bad()),
        );
    }
    let problem = input.and_then(|_| input_problem(state, d));
    let input_row = input.map(|_| lines.len() as u16);
    if let Some(i) = input {
        lines.push(Line::styled(format!("> {}", i.value()), theme.accent()));
        lines.push(match &problem {
            Some(p) => Line::styled(format!("✖ {}", shown(p)), theme.bad()),
            None => Line::styled("✔ ok", theme.ok()),
        });
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(hint, theme.label()));
    let width = lines
        .iter()
        .map(|l| l.width() as u16)
        .max()
        .unwrap_or(20)
        .max(title.len() as u16 + 4)
        + 4;
    let style = if matches!(
        d,
        Dialog::Rollback { .. } | Dialog::Conflict { .. } | Dialog::Override { .. }
    ) {
        theme.bad()
    } else {
        theme.accent()
    };
    let above_input: Vec<Line> = input_row
        .map(|row| lines[..row as usize].to_vec())
        .unwrap_or_default();
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(
        Block::default()
            .borders(Borders::ALL)
            .border_style(style)
            .title(format!(" {} ", shown(&title))),
    );
    // As tall as the text once wrapped, so a long refusal never pushes the hint out.
    let width = centered(area, width.min(76), 3).width;
    // line_count wraps at the width it is given and adds only the block's top and bottom.
    let height = paragraph.line_count(width.saturating_sub(2)) as u16;
    // The input's screen row counts the wrapped rows above it.
    let input_row = input_row.map(|_| {
        Paragraph::new(above_input)
            .wrap(Wrap { trim: false })
            .line_count(width.saturating_sub(2)) as u16
    });
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    frame.render_widget(paragraph, rect);
    if let (Some(i), Some(row)) = (input, input_row) {
        let x = rect.x + 1 + 2 + i.visual_cursor() as u16;
        let y = rect.y + 1 + row;
        if x < rect.x + rect.width - 1 && y < rect.y + rect.height - 1 {
            frame.set_cursor_position(Position { x, y });
        }
    }
}

pub fn help(state: &AppState, theme: Theme, frame: &mut Frame, area: Rect) {
    let rows = state.keys.help_rows();
    let key_width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(4);
    let entries: Vec<String> = rows
        .into_iter()
        .map(|(k, what)| format!(" {k:<key_width$}  {what}"))
        .collect();
    // Too tall for the screen (80x24): two columns, so every binding stays visible.
    let mut lines: Vec<Line> = if entries.len() + 4 > area.height as usize {
        let half = entries.len().div_ceil(2);
        let col = entries
            .iter()
            .map(|e| e.chars().count())
            .max()
            .unwrap_or(20);
        (0..half)
            .map(|i| {
                let right = entries.get(i + half).map(String::as_str).unwrap_or("");
                Line::raw(format!("{:<col$} {right}", entries[i]))
            })
            .collect()
    } else {
        entries.into_iter().map(Line::raw).collect()
    };
    lines.push(Line::raw(""));
    for note in [
        " ctrl-c always quits; ctrl-z suspends (fg resumes).",
        " Keys can be changed in the [keys] config table.",
    ] {
        lines.push(Line::styled(note, theme.label()));
    }
    let width = lines.iter().map(|l| l.width() as u16).max().unwrap_or(40) + 4;
    let rect = centered(area, width, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.accent())
                .title(" Keys (? or Esc closes) "),
        ),
        rect,
    );
}
