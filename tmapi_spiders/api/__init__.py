"""The TMAPI API and how to read it: its contract, requests, paid-call download, answers, pages, records."""
