"""Impact engine: pure functions over networkx graphs extracted by a store."""
