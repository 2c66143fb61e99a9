"""Operations: diagnose (which hop fails and why), its network probes, and SnapStart's hooks."""
