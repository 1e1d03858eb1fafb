"""`detector experiment`: a study config (`config`), its runner (`runner`), and its tables (`report`)."""
