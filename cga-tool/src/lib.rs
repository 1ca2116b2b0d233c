//! CGA and HBA generation, verification and signatures. **Not written yet** (issue: cga-tool).
