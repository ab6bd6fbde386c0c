"""A simulated Universal Robots e-Series controller: RTDE, the secondary interface, the dashboard."""
