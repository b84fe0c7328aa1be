//! Rate limits at the edges: low rates, tiny bursts, and the drain after a stop.
