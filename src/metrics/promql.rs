//! Just enough PromQL to tell whether one query can answer many revisions at once.
//!
//! A template whose only per-rollout placeholder is `{revision}`, used as a label matcher's
//! value (`label="{revision}"`), answers each revision on its own when every step of the
//! expression keeps series of different revisions apart. Then
//! `sum(increase(x{revision="{revision}"}[5m]))` becomes
//! `sum by (revision) (increase(x{revision=~"a|b|c"}[5m]))`, whose answer holds one element
//! per revision with exactly the value the per-revision query gives.
//!
//! "Keeps apart" is decided from the expression's shape, conservatively: every selector
//! carries the revision matcher; aggregations are rewritten to group by the label (or
//! already keep it); functions are ones known to keep labels; vector-vector operators match
//! on the label. A trailing `or vector(N)` (no series means N) is taken off and applied per
//! revision. Anything else (label_replace, topk, group_left, `on()` without the label,
//! `{side}`, a regex on `{revision}`...) is refused with the reason, and the caller queries
//! each rollout on its own.

use std::collections::BTreeSet;

use super::config::placeholders;

/// A template rewritten to answer many revisions in one query.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouped {
    /// The template with its revision matchers as regex matches (`label=~"{revision}"`),
    /// for `{revision}` filled with `rev1|rev2|...` (see `alternatives`).
    pub template: String,
    /// The label the answer is split by.
    pub label: String,
    /// A trailing `or vector(N)` taken off: what a revision without a series answers.
    pub fallback: Option<f64>,
}

/// `template` with every placeholder but `{revision}` already filled; the reason when its
/// shape does not allow grouping.
pub fn group(template: &str) -> Result<Grouped, String> {
    let found = placeholders(template);
    if let Some((_, p)) = found.iter().find(|(_, p)| *p != "revision") {
        return Err(format!("uses {{{p}}}"));
    }
    let toks = lex(template)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        label: None,
        matchers: 0,
        edits: Vec::new(),
        fallback: None,
    };
    let shape = p.expr(0)?;
    if p.pos < p.toks.len() {
        return Err(format!("unexpected '{}'", p.toks[p.pos].text));
    }
    if !matches!(shape, Shape::Vector(_)) {
        return Err("the result is not an instant vector".into());
    }
    let Some(label) = p.label.clone() else {
        return Err("no label=\"{revision}\" matcher".into());
    };
    if p.matchers != found.len() {
        return Err("{revision} is used other than as a label=\"{revision}\" matcher".into());
    }
    let mut text = template.to_string();
    p.edits.sort_by_key(|e| std::cmp::Reverse(e.at));
    for e in &p.edits {
        text.replace_range(e.at..e.at + e.len, &e.with);
    }
    Ok(Grouped {
        template: text,
        label,
        fallback: p.fallback,
    })
}

/// `names` as one RE2 alternation (Prometheus anchors it), each name matched literally.
pub fn alternatives(names: &[&str]) -> String {
    let mut out = String::new();
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        for c in n.chars() {
            if "\\.+*?()|[]{}^$".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum K {
    Ident,
    Number,
    Str,
    Op,
    Open(char),
    Close(char),
    Comma,
}

#[derive(Debug)]
struct Tok<'a> {
    kind: K,
    text: &'a str,
    start: usize,
    end: usize,
}

fn lex(s: &str) -> Result<Vec<Tok<'_>>, String> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' | b'`' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err("an unterminated string".into()),
                        Some(b'\\') if c != b'`' => i += 2,
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                K::Str
            }
            b'(' | b'{' | b'[' => {
                i += 1;
                K::Open(c as char)
            }
            b')' | b'}' | b']' => {
                i += 1;
                K::Close(c as char)
            }
            b',' => {
                i += 1;
                K::Comma
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                K::Ident
            }
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                // Numbers and durations (5m, 1h30m, 0x1f, 1.5e3) alike.
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                K::Number
            }
            _ => {
                let two = s.get(i..i + 2).unwrap_or("");
                i += if ["==", "!=", "<=", ">=", "=~", "!~"].contains(&two) {
                    2
                } else if "+-*/%^<>=@:".contains(c as char) {
                    1
                } else {
                    return Err(format!(
                        "unexpected character '{}'",
                        &s[i..].chars().next().unwrap_or('?')
                    ));
                };
                K::Op
            }
        };
        toks.push(Tok {
            kind,
            text: &s[start..i],
            start,
            end: i,
        });
    }
    Ok(toks)
}

/// The labels an expression's elements carry when it is run for one revision; `None`: not
/// known from the text (a selector's own labels).
type Labels = Option<BTreeSet<String>>;

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Scalar,
    Vector(Labels),
    Range(Labels),
    /// `vector(N)`: allowed only as a trailing `or vector(N)`.
    Fallback(f64),
}

/// `(a, b)` after by, without, on or ignoring.
struct LabelList {
    names: Vec<String>,
    /// Where `)` is, and whether a name (not a comma) precedes it.
    close: usize,
    after_name: bool,
}

struct Edit {
    at: usize,
    len: usize,
    with: String,
}

struct Parser<'a> {
    toks: Vec<Tok<'a>>,
    pos: usize,
    /// Inside parentheses, calls or aggregations.
    depth: usize,
    label: Option<String>,
    matchers: usize,
    edits: Vec<Edit>,
    fallback: Option<f64>,
}

const AGGREGATIONS: [&str; 8] = [
    "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar",
];
const PARAM_AGGREGATIONS: [&str; 6] = [
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
];

#[derive(Clone, Copy, PartialEq)]
enum Arg {
    S,
    V,
    R,
}

/// Functions that keep every label of their vector argument (histogram_quantile: all but
/// `le`), with their arguments; a trailing `None` marks the optional ones.
fn signature(name: &str) -> Option<&'static [Arg]> {
    use Arg::*;
    Some(match name {
        "rate" | "irate" | "increase" | "delta" | "idelta" | "deriv" | "resets" | "changes"
        | "avg_over_time" | "min_over_time" | "max_over_time" | "sum_over_time"
        | "count_over_time" | "last_over_time" | "present_over_time" | "stddev_over_time"
        | "stdvar_over_time" | "mad_over_time" => &[R],
        "quantile_over_time" => &[S, R],
        "predict_linear" => &[R, S],
        "abs" | "ceil" | "floor" | "exp" | "ln" | "log2" | "log10" | "sqrt" | "sgn"
        | "timestamp" | "histogram_count" | "histogram_sum" | "histogram_avg"
        | "histogram_stddev" | "histogram_stdvar" => &[V],
        "clamp" => &[V, S, S],
        "clamp_min" | "clamp_max" => &[V, S],
        "histogram_quantile" => &[S, V],
        "histogram_fraction" => &[S, S, V],
        _ => return None,
    })
}

/// Binary operators by precedence, loosest first.
fn precedence(op: &str) -> Option<u8> {
    Some(match op {
        "or" => 1,
        "and" | "unless" => 2,
        "==" | "!=" | "<=" | "<" | ">=" | ">" => 3,
        "+" | "-" => 4,
        "*" | "/" | "%" | "atan2" => 5,
        "^" => 6,
        _ => return None,
    })
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Tok<'a>> {
        self.toks.get(self.pos)
    }

    fn peek_text(&self) -> &'a str {
        self.toks.get(self.pos).map_or("", |t| t.text)
    }

    fn next(&mut self) -> Result<&Tok<'a>, String> {
        let t = self
            .toks
            .get(self.pos)
            .ok_or_else(|| "the template ends early".to_string())?;
        self.pos += 1;
        Ok(t)
    }

    fn expect(&mut self, kind: K) -> Result<&Tok<'a>, String> {
        let t = self.next()?;
        if t.kind != kind {
            return Err(format!("unexpected '{}'", t.text));
        }
        Ok(t)
    }

    fn expr(&mut self, min: u8) -> Result<Shape, String> {
        let mut left = self.unary()?;
        while let Some(t) = self.peek() {
            if !matches!(t.kind, K::Op | K::Ident) {
                break;
            }
            let op = t.text;
            let Some(prec) = precedence(op) else { break };
            if prec < min {
                break;
            }
            let op_at = self.pos;
            self.pos += 1;
            let matching = self.binary_modifiers()?;
            // `^` is right-associative.
            let right = self.expr(if op == "^" { prec } else { prec + 1 })?;
            left = self.binary(op, op_at, left, right, matching)?;
        }
        Ok(left)
    }

    /// `bool`, `on(...)`/`ignoring(...)`: whether the operands still match per revision.
    fn binary_modifiers(&mut self) -> Result<Option<(bool, Vec<String>)>, String> {
        if self.peek_text() == "bool" {
            self.pos += 1;
        }
        let kw = self.peek_text();
        if kw != "on" && kw != "ignoring" {
            return Ok(None);
        }
        self.pos += 1;
        let labels = self.label_list()?.names;
        if matches!(self.peek_text(), "group_left" | "group_right") {
            return Err(format!("{} matching", self.peek_text()));
        }
        Ok(Some((kw == "on", labels)))
    }

    fn binary(
        &mut self,
        op: &str,
        op_at: usize,
        left: Shape,
        right: Shape,
        matching: Option<(bool, Vec<String>)>,
    ) -> Result<Shape, String> {
        let set_op = matches!(op, "and" | "or" | "unless");
        if let Shape::Fallback(n) = right {
            // From the end of the left operand to the end of `vector(N)`.
            let from = self.toks[op_at - 1].end;
            let to = self.toks[self.pos - 1].end;
            return match left {
                Shape::Vector(Some(l))
                    if op == "or"
                        && l.is_empty()
                        && matching.is_none()
                        && self.depth == 0
                        && self.pos == self.toks.len()
                        && self.fallback.is_none() =>
                {
                    self.edits.push(Edit {
                        at: from,
                        len: to - from,
                        with: String::new(),
                    });
                    self.fallback = Some(n);
                    Ok(Shape::Vector(Some(l)))
                }
                _ => Err("vector(...) other than a trailing `or vector(N)` on an aggregate".into()),
            };
        }
        match (left, right) {
            (Shape::Scalar, Shape::Scalar) if !set_op => Ok(Shape::Scalar),
            (Shape::Vector(l), Shape::Scalar) | (Shape::Scalar, Shape::Vector(l)) if !set_op => {
                Ok(Shape::Vector(l))
            }
            (Shape::Vector(l), Shape::Vector(r)) => {
                let label = self.label.clone().unwrap_or_default();
                if let Some((on, list)) = &matching
                    && list.contains(&label) != *on
                {
                    return Err(format!(
                        "`{}(...)` matching that does not match on {label}",
                        if *on { "on" } else { "ignoring" }
                    ));
                }
                Ok(Shape::Vector(if set_op && l != r { None } else { l }))
            }
            _ => Err(format!("operator {op} on these operands")),
        }
    }

    fn unary(&mut self) -> Result<Shape, String> {
        if matches!(self.peek_text(), "-" | "+") {
            self.pos += 1;
            return match self.unary()? {
                s @ (Shape::Scalar | Shape::Vector(_)) => Ok(s),
                _ => Err("a sign on a range or vector(...)".into()),
            };
        }
        let mut shape = self.primary()?;
        loop {
            match self.peek() {
                Some(t) if t.kind == K::Open('[') => {
                    let Shape::Vector(l) = shape else {
                        return Err("a range of something not a vector".into());
                    };
                    self.skip_group()?;
                    shape = Shape::Range(l);
                }
                Some(t) if t.text == "offset" => {
                    self.pos += 1;
                    if self.peek_text() == "-" {
                        self.pos += 1;
                    }
                    self.expect(K::Number)?;
                }
                Some(t) if t.text == "@" => {
                    self.pos += 1;
                    match self.next()?.kind {
                        K::Number => {}
                        K::Ident => {
                            self.expect(K::Open('('))?;
                            self.expect(K::Close(')'))?;
                        }
                        _ => return Err("an odd @ modifier".into()),
                    }
                }
                _ => return Ok(shape),
            }
        }
    }

    /// Skips a bracketed group (a range or subquery: durations only).
    fn skip_group(&mut self) -> Result<(), String> {
        self.expect(K::Open('['))?;
        loop {
            let t = self.next()?;
            match t.kind {
                K::Close(']') => return Ok(()),
                K::Number | K::Op if t.text != "@" => {}
                _ => return Err(format!("unexpected '{}' in a range", t.text)),
            }
        }
    }

    fn primary(&mut self) -> Result<Shape, String> {
        let t = self.next()?;
        let (kind, text) = (t.kind, t.text);
        match kind {
            K::Number => Ok(Shape::Scalar),
            K::Str => Err("a string outside a label matcher".into()),
            K::Open('(') => {
                self.depth += 1;
                let inner = self.expr(0)?;
                self.expect(K::Close(')'))?;
                self.depth -= 1;
                Ok(inner)
            }
            K::Open('{') => {
                self.pos -= 1;
                self.matchers()
            }
            K::Ident if matches!(text, "Inf" | "inf" | "NaN" | "nan") => Ok(Shape::Scalar),
            K::Ident if AGGREGATIONS.contains(&text) => self.aggregation(),
            K::Ident if PARAM_AGGREGATIONS.contains(&text) => Err(format!("{text}(...)")),
            K::Ident if self.peek().is_some_and(|t| t.kind == K::Open('(')) => self.call(text),
            K::Ident => {
                if self.peek().is_some_and(|t| t.kind == K::Open('{')) {
                    self.matchers()
                } else {
                    Err(format!(
                        "a selector without the {{revision}} matcher ({text})"
                    ))
                }
            }
            _ => Err(format!("unexpected '{text}'")),
        }
    }

    /// `{a="b", label="{revision}"}`: the revision matcher becomes a regex match.
    fn matchers(&mut self) -> Result<Shape, String> {
        self.expect(K::Open('{'))?;
        let mut has_revision = false;
        loop {
            let t = self.next()?;
            if t.kind == K::Close('}') {
                break;
            }
            if t.kind != K::Ident {
                return Err(format!("unexpected '{}' in a selector", t.text));
            }
            let name = t.text.to_string();
            let op = self.expect(K::Op)?;
            let (op_text, op_start, op_end) = (op.text, op.start, op.end);
            if !matches!(op_text, "=" | "!=" | "=~" | "!~") {
                return Err(format!("unexpected '{op_text}' in a selector"));
            }
            let value = self.expect(K::Str)?.text;
            if value.contains("{revision}") {
                if value != "\"{revision}\"" || op_text != "=" {
                    return Err(format!(
                        "{{revision}} in `{name}{op_text}{value}`, not as `{name}=\"{{revision}}\"`"
                    ));
                }
                if self.label.as_ref().is_some_and(|l| *l != name) {
                    return Err("{revision} matches two different labels".into());
                }
                self.label = Some(name);
                self.matchers += 1;
                has_revision = true;
                self.edits.push(Edit {
                    at: op_start,
                    len: op_end - op_start,
                    with: "=~".into(),
                });
            }
            match self.next()? {
                t if t.kind == K::Comma => {}
                t if t.kind == K::Close('}') => break,
                t => return Err(format!("unexpected '{}' in a selector", t.text)),
            }
        }
        if !has_revision {
            return Err("a selector without the {revision} matcher".into());
        }
        Ok(Shape::Vector(None))
    }

    /// `(a, b)`.
    fn label_list(&mut self) -> Result<LabelList, String> {
        self.expect(K::Open('('))?;
        let mut names = Vec::new();
        let mut after_name = false;
        loop {
            let t = self.next()?;
            match t.kind {
                K::Close(')') => {
                    return Ok(LabelList {
                        names,
                        close: t.start,
                        after_name,
                    });
                }
                K::Ident => {
                    names.push(t.text.to_string());
                    after_name = true;
                }
                K::Comma => after_name = false,
                _ => return Err(format!("unexpected '{}' in a label list", t.text)),
            }
        }
    }

    /// `by (...)` (true) or `without (...)`, before or after the argument.
    fn grouping(&mut self) -> Result<Option<(bool, LabelList)>, String> {
        let kw = self.peek_text();
        if kw != "by" && kw != "without" {
            return Ok(None);
        }
        self.pos += 1;
        Ok(Some((kw == "by", self.label_list()?)))
    }

    fn aggregation(&mut self) -> Result<Shape, String> {
        let name_end = self.toks[self.pos - 1].end;
        let mut grouping = self.grouping()?;
        self.expect(K::Open('('))?;
        self.depth += 1;
        let arg = self.expr(0)?;
        if self.peek().is_some_and(|t| t.kind == K::Comma) {
            return Err("an aggregation with a parameter".into());
        }
        self.expect(K::Close(')'))?;
        self.depth -= 1;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        if !matches!(arg, Shape::Vector(_)) {
            return Err("an aggregation of something not a vector".into());
        }
        let label = self.label.clone().unwrap_or_default();
        match grouping {
            None => {
                self.edits.push(Edit {
                    at: name_end,
                    len: 0,
                    with: format!(" by ({label}) "),
                });
                Ok(Shape::Vector(Some(BTreeSet::new())))
            }
            Some((true, list)) => {
                let LabelList {
                    names,
                    close,
                    after_name,
                } = list;
                if !names.contains(&label) {
                    self.edits.push(Edit {
                        at: close,
                        len: 0,
                        with: if after_name {
                            format!(", {label}")
                        } else {
                            label.clone()
                        },
                    });
                }
                Ok(Shape::Vector(Some(names.into_iter().collect())))
            }
            Some((false, list)) => {
                if list.names.contains(&label) {
                    return Err(format!("without ({label})"));
                }
                Ok(Shape::Vector(None))
            }
        }
    }

    fn call(&mut self, name: &str) -> Result<Shape, String> {
        let open = self.pos;
        if name == "vector" {
            // Only a literal: what a revision without series answers.
            return match (self.toks.get(open + 1), self.toks.get(open + 2)) {
                (Some(n), Some(c)) if n.kind == K::Number && c.kind == K::Close(')') => {
                    let v = n.text.parse().map_err(|_| format!("vector({})", n.text))?;
                    self.pos = open + 3;
                    Ok(Shape::Fallback(v))
                }
                _ => Err("vector(...) of anything but a number".into()),
            };
        }
        if name != "round" && signature(name).is_none() {
            return Err(format!("the function {name}"));
        }
        self.expect(K::Open('('))?;
        self.depth += 1;
        let mut args = Vec::new();
        if self.peek().is_some_and(|t| t.kind == K::Close(')')) {
            self.pos += 1;
        } else {
            loop {
                args.push(self.expr(0)?);
                match self.next()? {
                    t if t.kind == K::Comma => {}
                    t if t.kind == K::Close(')') => break,
                    t => return Err(format!("unexpected '{}'", t.text)),
                }
            }
        }
        self.depth -= 1;
        if name == "round" && args.len() == 2 {
            return match (&args[0], &args[1]) {
                (Shape::Vector(l), Shape::Scalar) => Ok(Shape::Vector(l.clone())),
                _ => Err("round(...) arguments".into()),
            };
        }
        let want: &[Arg] = match name {
            "round" => &[Arg::V],
            _ => signature(name).ok_or_else(|| format!("the function {name}"))?,
        };
        if args.len() != want.len() {
            return Err(format!("{name}(...) with {} arguments", args.len()));
        }
        let mut labels = None;
        for (a, w) in args.into_iter().zip(want) {
            match (a, w) {
                (Shape::Scalar, Arg::S) => {}
                (Shape::Vector(l), Arg::V) | (Shape::Range(l), Arg::R) => labels = Some(l),
                _ => return Err(format!("{name}(...) arguments")),
            }
        }
        let mut labels = labels.ok_or_else(|| format!("{name}(...) of no vector"))?;
        if name == "histogram_quantile"
            && let Some(l) = labels.as_mut()
        {
            l.remove("le");
        }
        Ok(Shape::Vector(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::config::{PrometheusQueries, fill};

    fn grouped(t: &str) -> Grouped {
        group(t).unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn the_default_templates_group() {
        let d = PrometheusQueries::default();
        let w = [("window", "9m"), ("quantile", "0.99")];
        let g = grouped(&fill(&d.requests, &w));
        assert_eq!(
            g.template,
            r#"sum by (revision) (increase(http_requests_total{revision=~"{revision}"}[9m]))"#
        );
        assert_eq!((g.label.as_str(), g.fallback), ("revision", None));
        let g = grouped(&fill(&d.errors, &w));
        assert_eq!(
            g.template,
            r#"sum by (revision) (increase(http_requests_total{revision=~"{revision}",code=~"5.."}[9m]))"#
        );
        assert_eq!(g.fallback, Some(0.0));
        let g = grouped(&fill(&d.latency, &w));
        assert_eq!(
            g.template,
            r#"histogram_quantile(0.99, sum by (le, revision) (rate(http_request_duration_seconds_bucket{revision=~"{revision}"}[9m]))) * 1000"#
        );
        let g = grouped(&fill(&d.newest, &w));
        assert_eq!(
            g.template,
            r#"max by (revision) (timestamp(http_requests_total{revision=~"{revision}"}))"#
        );
    }

    #[test]
    fn shapes_that_keep_revisions_apart_group() {
        for (t, want) in [
            (
                r#"sum(rate(a{r="{revision}"}[5m])) / sum(rate(b{r="{revision}"}[5m]))"#,
                r#"sum by (r) (rate(a{r=~"{revision}"}[5m])) / sum by (r) (rate(b{r=~"{revision}"}[5m]))"#,
            ),
            (
                r#"sum by () (x{r="{revision}"})"#,
                r#"sum by (r) (x{r=~"{revision}"})"#,
            ),
            (
                r#"sum(x{r="{revision}"}) or vector(0)"#,
                r#"sum by (r) (x{r=~"{revision}"})"#,
            ),
            (
                r#"sum(x{r="{revision}"}) by (a,)"#,
                r#"sum(x{r=~"{revision}"}) by (a,r)"#,
            ),
            (
                r#"max without (pod) (x{r="{revision}"} offset 1m)"#,
                r#"max without (pod) (x{r=~"{revision}"} offset 1m)"#,
            ),
            (
                r#"max_over_time(sum by (r) (rate(x{r="{revision}"}[1m]))[5m:30s])"#,
                r#"max_over_time(sum by (r) (rate(x{r=~"{revision}"}[1m]))[5m:30s])"#,
            ),
            (
                r#"-x{r="{revision}"} + ignoring(code) y{r="{revision}"} > bool 0"#,
                r#"-x{r=~"{revision}"} + ignoring(code) y{r=~"{revision}"} > bool 0"#,
            ),
            (r#"(sum(x{r="{revision}"}) or vector(-1.5))"#, ""),
        ] {
            match group(t) {
                Ok(g) => assert_eq!(g.template, want, "{t}"),
                Err(e) => assert!(want.is_empty(), "{t}: {e}"),
            }
        }
    }

    #[test]
    fn shapes_that_would_mix_revisions_are_refused_with_the_reason() {
        for (t, why) in [
            (r#"sum(x{r="{revision}",s="{side}"})"#, "uses {side}"),
            (r#"sum(x{r=~"{revision}"})"#, "not as `r=\"{revision}\"`"),
            (r#"sum(x{r="{revision}-.*"})"#, "not as"),
            (
                r#"sum(x{r="{revision}"}) / sum(y)"#,
                "without the {revision} matcher",
            ),
            (
                r#"sum(x{r="{revision}"}) / sum(y{q="{revision}"})"#,
                "two different labels",
            ),
            (
                r#"label_replace(x{r="{revision}"}, "r", "a", "r", ".*")"#,
                "the function label_replace",
            ),
            (r#"topk(1, x{r="{revision}"})"#, "topk"),
            (r#"sum without (r) (x{r="{revision}"})"#, "without (r)"),
            (
                r#"x{r="{revision}"} / on() y{r="{revision}"}"#,
                "does not match on r",
            ),
            (
                r#"x{r="{revision}"} / on(r) group_left y{r="{revision}"}"#,
                "group_left",
            ),
            (
                r#"x{r="{revision}"} or vector(0)"#,
                "trailing `or vector(N)`",
            ),
            (r#"(sum(x{r="{revision}"}) or vector(0)) * 2"#, "trailing"),
            (r#"scalar(sum(x{r="{revision}"}))"#, "the function scalar"),
            (r#"sum(x{r="{revision}"}) # {revision}"#, "other than as"),
        ] {
            let e = group(t).expect_err(t);
            assert!(e.contains(why), "{t}: {e} (wanted {why})");
        }
    }

    #[test]
    fn the_cloud_run_promql_example_groups() {
        let t = r#"sum(increase(run_googleapis_com:request_count{monitored_resource="cloud_run_revision",revision_name="{revision}"}[9m]))"#;
        let g = grouped(t);
        assert_eq!(g.label, "revision_name");
        assert_eq!(
            g.template,
            r#"sum by (revision_name) (increase(run_googleapis_com:request_count{monitored_resource="cloud_run_revision",revision_name=~"{revision}"}[9m]))"#
        );
    }

    #[test]
    fn revision_names_match_literally() {
        assert_eq!(alternatives(&["a-1", "b.2", "c|d"]), r"a-1|b\.2|c\|d");
    }
}
