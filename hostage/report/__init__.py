"""Outputs: tables, HTML report, label map, DICOM SEG and SR."""
