"""The API tokens page (/accounts/tokens/): a signed-in user's own tokens, made and revoked there."""

import unicodedata

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from tagledger import once

from .models import MAX_NAME, ApiToken


def clean_name(value: str) -> str:
    """A token's label: one line of printable text, 1 to MAX_NAME characters (ValueError otherwise)."""
    name = value.strip()
    if not name:
        raise ValueError("a token needs a name: what it is for")
    if len(name) > MAX_NAME:
        raise ValueError(f"a token's name is at most {MAX_NAME} characters")
    if any(unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp") for character in name):
        raise ValueError("a token's name is one line of printable text")
    return name


class TokenForm(forms.Form):
    name = forms.CharField(max_length=MAX_NAME, help_text="What it is for, e.g. the CI job that will use it.")
    staff = forms.BooleanField(
        required=False, label="Staff scope", help_text="Without it the token only reads (GET)."
    )
    once = once.field()

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        if not user.is_staff:
            del self.fields["staff"]

    def clean_name(self):
        try:
            return clean_name(self.cleaned_data["name"])
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def tokens(request):
    """List one's tokens; a POST makes one and shows its secret in this response only."""
    issued = None
    if request.method == "POST":
        form = TokenForm(request.POST, user=request.user)
        if form.is_valid() and not once.spend(form.cleaned_data[once.FIELD]):
            # The same form again (a reload of the page that showed the secret): made already.
            messages.info(request, "That form was sent already: its token is below.")
            return redirect("tokens:list")
        if form.is_valid():
            staff = form.cleaned_data.get("staff", False)
            issued = ApiToken.objects.issue(request.user, form.cleaned_data["name"], staff=staff)
            form = TokenForm(user=request.user)
    else:
        form = TokenForm(user=request.user)
    context = {"form": form, "issued": issued, "tokens": ApiToken.objects.of(request.user)}
    return render(request, "tokens/tokens.html", context, status=201 if issued else 200)


@login_required
@require_POST
def revoke(request, id: int):
    # Another user's token is a 404, as one that does not exist: ids say nothing about others.
    token = get_object_or_404(ApiToken, pk=id, user=request.user)
    if token.revoke():
        messages.success(request, f"Revoked {token.display_prefix} ({token.name}).")
    return redirect("tokens:list")
