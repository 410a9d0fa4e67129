"""Command lines for the example scripts: `--help` shows every option's default."""
import argparse
import copy


class HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's ArgumentDefaultsHelpFormatter adds "(default: ...)" only to options that have a help
    text; this one adds it to every option that has a default, with or without help."""

    def _format_action(self, action):
        shows_default = (action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
                         and "%(default)" not in (action.help or ""))
        if shows_default and not action.help:
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action):
        if action.default is None:             # "(default: None)" says nothing; the help text says what happens
            return action.help
        return super()._get_help_string(action)
