"""Impact questions: change impact and conflicts, incident routing, probable cause."""
