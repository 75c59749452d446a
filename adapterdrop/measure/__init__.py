"""Measurement: timing (:mod:`.timing`), FLOPs (:mod:`.flops`), memory (:mod:`.memory`), environment
(:mod:`.env`), and the interleaved measurement of one comparison group (:mod:`.runner`)."""
