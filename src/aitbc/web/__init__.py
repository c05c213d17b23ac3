"""The marketplace's web front end: one HTML shell and a small script that renders every
page from the JSON API in the browser (see docs/web.md for why), served by the coordinator
itself at ``/``."""
