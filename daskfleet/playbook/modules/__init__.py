"""The built-in playbook modules, one file each; see daskfleet.playbook.module."""
