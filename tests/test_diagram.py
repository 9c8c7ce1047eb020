"""The picture of one `pulumi up` in docs/how-it-works.md is the program's own, as it is now."""

from __future__ import annotations

from tests.diagram import PICTURED_IN, drawn_picture, mermaid
from tests.harness import run_program


def test_the_documented_picture_matches_the_program():
    assert drawn_picture(PICTURED_IN.read_text()) == mermaid(run_program()), (
        "the program changed: run `.venv/bin/python -m tests.diagram` to draw the picture again"
    )


def test_the_picture_marks_the_longest_chains_from_the_preflight():
    """Eight links each, all ending at the annex guard, made last: the preflight, the four machine
    steps of the personal HTCondor and the check, or the autostart after them; or the preflight,
    three AWS creates (the annex user waits for the ARNs its policy names), the key files, the
    user_config block and the check; or the preflight, three AWS creates (the instance profile's
    role and profile, then the lease functions, which end only instances with that profile), the
    marker stacks and the check; or the preflight, four AWS creates of the annex image (the build's
    role, its policies, its infrastructure, the image) and the block naming the image."""
    picture = mermaid(run_program())
    marked = next(line for line in picture.splitlines() if line.strip().startswith("class "))
    assert set(marked.split()[1].split(",")) == {
        "preflight_Command",
        "condor_dir_Command",
        "personal_condor_install_Command",
        "personal_condor_configure_Command",
        "personal_condor_pool_password_Command",
        "personal_condor_start_Command",
        "personal_condor_autostart_Command",
        "annex_us_east_1_config_ConfigurationBucket",
        "annex_us_east_1_instance_InstanceProfile",
        "annex_us_east_1_functions_LeaseFunctions",
        "annex_us_east_1_check_setup_CheckSetupStacks",
        "annex_us_east_1_sg_SecurityGroup",
        "annex_user_AnnexUser",
        "annex_client_key_files_Command",
        "annex_client_user_config_Command",
        "annex_client_check_setup_us_east_1_Command",
        "annex_image_us_east_1_AnnexImage",
        "annex_client_images_Command",
        "annex_guard_Command",
    }
    assert "preflight_Command --> aws_us_east_1_aws" in picture, "AWS waits for the preflight"
