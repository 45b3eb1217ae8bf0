"""`scaleout top`: the balancer's request record (records.py), windowed per replica (window.py) and
shown as a frame of text or JSON (view.py). Pure: lines in, frames out; targets/requests.py reads the lines."""
