"""STIG evaluation of images with OpenSCAP and the SCAP Security Guide, and STIG Viewer checklists."""
