//! A scrape some of whose hashes other workers count, as the asking worker
//! keeps it until their answers are in (both stream trackers; the counts
//! type `S` is each tracker's own).

use riptide_common::InfoHash;

/// The counts of a scrape's hashes in the request's order, and how many
/// owners still owe theirs.
#[derive(Debug)]
pub struct ScrapeParts<S> {
    /// `(hash, counts)` in the request's order.
    pub files: Vec<(InfoHash, S)>,
    /// Owners whose answer has not come yet.
    pub missing: usize,
}

impl<S> Default for ScrapeParts<S> {
    fn default() -> Self {
        ScrapeParts {
            files: Vec::new(),
            missing: 0,
        }
    }
}

impl<S> ScrapeParts<S> {
    /// Puts one owner's answer (`(index in the request, counts)`) in
    /// place; true once every owner has answered.
    pub fn fill(&mut self, answer: impl IntoIterator<Item = (u8, S)>) -> bool {
        for (i, counts) in answer {
            if let Some(f) = self.files.get_mut(usize::from(i)) {
                f.1 = counts;
            }
        }
        self.missing = self.missing.saturating_sub(1);
        self.missing == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_fill_their_places_until_none_is_missing() {
        let (a, b) = (InfoHash([1; 20]), InfoHash([2; 20]));
        let mut p = ScrapeParts {
            files: vec![(a, 0u32), (b, 0)],
            missing: 2,
        };
        assert!(
            !p.fill([(1, 7), (9, 9)]),
            "an index out of range is skipped"
        );
        assert!(p.fill([(0, 5)]));
        assert_eq!(p.files, [(a, 5), (b, 7)]);
    }
}
