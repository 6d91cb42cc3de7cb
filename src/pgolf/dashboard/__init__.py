"""The local web dashboard and the static HTML report."""

# Host names that mean this machine: the dashboard binds to them without --allow-remote, and accepts
# only them in the Host header (no DNS rebinding) unless it was opened to the network on purpose.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
