//! Reports: notes, the data path per side, and the splice ring's share of the pipe budget.
