"""Where runs execute: the Backend protocol and its local, SSH and RunPod implementations."""
